/* The streaming hot path's two per-read steps in C (core/speedups.py says when they are used, and falls back to
 * the Python code, which defines what they do, when this module is not built).
 *
 * recv_stamped(fd, size, max_age_s) -> (bytes, arrived)
 *     One non-blocking recvmsg of at most `size` bytes and the perf_counter() time its newest bytes reached the
 *     machine: the kernel's SO_TIMESTAMPNS stamp moved onto CLOCK_MONOTONIC by its age, or the clock at the read
 *     when no believable stamp came (users/common/arrival_clock.py `receive`, which this mirrors).
 *
 * scan_openai(data, loads) -> (texts, reasoning, usage, done) | None
 *     A body piece that is nothing but whole `data: <JSON>\n\n` messages of an OpenAI-compatible stream, read as
 *     OpenAIChatParser reads them: the answer texts in order, whether a reasoning delta came, the last usage count
 *     (or None), and whether `[DONE]` came (messages after it are not read). Anything else, malformed JSON, an
 *     error, a shape the parser would call unexpected, a line break other than LF, returns None, and the Python
 *     parser reads the piece: it has no state here to undo.
 *
 * count_values(counts, values, bucket) -> int
 *     Each of `values` (ms) counted in the dict `counts` under its histogram key (core/histogram.py `bucket`: the
 *     value in microseconds at three significant digits, halves rounded to even as Python's round() does); values
 *     of 1,000 s and more, and ones that are not finite, are keyed by calling `bucket` itself. Returns how many.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_READ_BYTES (1 << 24)

static double seconds(const struct timespec *t) { return (double)t->tv_sec + (double)t->tv_nsec * 1e-9; }

/* One non-blocking read of at most `size` bytes (b"" at the peer's close) and its arrival in `*arrived`; NULL with
 * BlockingIOError (or another OSError) raised when nothing could be read. */
static PyObject *read_stamped(int fd, Py_ssize_t size, double max_age_s, double *arrived) {
    PyObject *buffer = PyBytes_FromStringAndSize(NULL, size);
    if (buffer == NULL) return NULL;
    struct iovec iov = {PyBytes_AS_STRING(buffer), (size_t)size};
    union {
        char space[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } control;
    struct msghdr message;
    memset(&message, 0, sizeof(message));
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    ssize_t got;
    do {
        message.msg_control = control.space;
        message.msg_controllen = sizeof(control.space);
        got = recvmsg(fd, &message, MSG_DONTWAIT);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        Py_DECREF(buffer);
        return PyErr_SetFromErrno(PyExc_OSError); /* EAGAIN becomes BlockingIOError, as socket.recvmsg raises */
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (_PyBytes_Resize(&buffer, got) < 0) return NULL;
    *arrived = seconds(&now);
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SO_TIMESTAMPNS &&
            header->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec stamp, wall;
            memcpy(&stamp, CMSG_DATA(header), sizeof(stamp));
            clock_gettime(CLOCK_REALTIME, &wall);
            double age_s = (double)(wall.tv_sec - stamp.tv_sec) + (double)(wall.tv_nsec - stamp.tv_nsec) * 1e-9;
            if (age_s >= 0.0 && age_s <= max_age_s) *arrived -= age_s;
            break;
        }
    }
    return buffer;
}

/* Checks a read's arguments: a file descriptor and a size within bounds; -1 with an exception raised if not. */
static int check_read(long fd, Py_ssize_t size) {
    if (PyErr_Occurred()) return -1;
    if (fd < 0 || fd > INT_MAX) {
        errno = EBADF;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (size <= 0 || size > MAX_READ_BYTES) {
        PyErr_SetString(PyExc_ValueError, "read size out of range");
        return -1;
    }
    return 0;
}

static PyObject *recv_stamped(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "recv_stamped(fd, size, max_age_s)");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t size = PyLong_AsSsize_t(args[1]);
    if (size == -1 && PyErr_Occurred()) return NULL;
    double max_age_s = PyFloat_AsDouble(args[2]);
    if (check_read(fd, size) < 0) return NULL;
    double arrived;
    PyObject *data = read_stamped((int)fd, size, max_age_s, &arrived);
    return data == NULL ? NULL : Py_BuildValue("(Nd)", data, arrived);
}

/* Interned keys, made once: of the JSON read, and of AnswerReader's and StreamRecord's attributes filed. */
static PyObject *k_choices, *k_delta, *k_content, *k_reasoning_content, *k_reasoning, *k_text, *k_usage,
    *k_completion_tokens, *k_error, *k_object, *a_record, *a_text, *a_start, *a_last_ms, *a_received, *a_since_event,
    *a_until_first_token, *a_chunk_times_ms, *a_ttfo_ms, *a_usage_tokens;

/* The int 1, made once (count_values). */
static PyObject *one;

/* obj[key] or NULL (borrowed; no error set) for a dict. */
static PyObject *get(PyObject *dict, PyObject *key) { return PyDict_GetItemWithError(dict, key); }

/* dict[key] in *value (borrowed, NULL when absent) and its truth, as Python's `if value:`: 1, 0, or -1 on error. */
static int get_truth(PyObject *dict, PyObject *key, PyObject **value) {
    *value = get(dict, key);
    if (*value == NULL) return PyErr_Occurred() ? -1 : 0;
    return PyObject_IsTrue(*value);
}

/* Whether `value` is a non-empty str (what the parser takes as text); -1 on error. */
static int is_text(PyObject *value) { return value != NULL && PyUnicode_Check(value) && PyUnicode_GET_LENGTH(value) > 0; }

/* One message's JSON, read as OpenAIChatParser._on_message does. 1: read; 0: leave the piece to Python; -1: error. */
static int read_message(PyObject *obj, PyObject *texts, int *reasoning, PyObject **usage) {
    if (!PyDict_CheckExact(obj)) return 0;
    int has_error = PyDict_Contains(obj, k_error);
    if (has_error != 0) return has_error < 0 ? -1 : 0; /* an error, or a key the parser must judge */
    PyObject *choices, *delta, *thought, *counts;
    int has_choices = get_truth(obj, k_choices, &choices);
    if (has_choices < 0) return -1;
    if (has_choices) {
        if (!PyList_CheckExact(choices)) return 0;
        PyObject *choice = PyList_GET_ITEM(choices, 0);
        if (!PyDict_CheckExact(choice)) return 0;
        int has_delta = get_truth(choice, k_delta, &delta);
        if (has_delta < 0) return -1;
        PyObject *text;
        if (has_delta) {
            if (!PyDict_CheckExact(delta)) return 0;
            int truthy = get_truth(delta, k_reasoning_content, &thought);
            if (truthy < 0) return -1;
            if (!truthy) thought = get(delta, k_reasoning);
            if (PyErr_Occurred()) return -1;
            if (is_text(thought)) *reasoning = 1;
            text = get(delta, k_content);
        } else {
            text = get(choice, k_text);
        }
        if (PyErr_Occurred()) return -1;
        if (is_text(text) && PyList_Append(texts, text) < 0) return -1;
    } else {
        PyObject *kind = get(obj, k_object);
        if (PyErr_Occurred()) return -1;
        if (kind != NULL && PyUnicode_Check(kind) && PyUnicode_CompareWithASCIIString(kind, "error") == 0) return 0;
    }
    int has_usage = get_truth(obj, k_usage, &counts);
    if (has_usage < 0) return -1;
    if (has_usage) {
        if (!PyDict_CheckExact(counts)) return 0;
        PyObject *tokens = get(counts, k_completion_tokens);
        if (PyErr_Occurred()) return -1;
        if (tokens != NULL && PyLong_CheckExact(tokens)) {
            Py_INCREF(tokens);
            Py_XSETREF(*usage, tokens);
        }
    }
    return 1;
}

static int is_done(const char *payload, Py_ssize_t length) {
    while (length > 0 && (*payload == ' ' || *payload == '\t')) payload++, length--;
    while (length > 0 && (payload[length - 1] == ' ' || payload[length - 1] == '\t')) length--;
    return length == 6 && memcmp(payload, "[DONE]", 6) == 0;
}

/* What whole OpenAI messages say, as (texts, reasoning, usage, done); None for anything else (see the top). */
static PyObject *scan_messages(const char *data, Py_ssize_t size, PyObject *loads) {
    if (size == 0 || memchr(data, '\r', size) != NULL) Py_RETURN_NONE;
    /* The framing first, so that nothing is parsed for a piece Python will read anyway. */
    for (Py_ssize_t at = 0; at < size;) {
        if (size - at < 8 || memcmp(data + at, "data: ", 6) != 0) Py_RETURN_NONE;
        const char *end = memchr(data + at + 6, '\n', size - at - 6);
        if (end == NULL || end + 1 >= data + size || end[1] != '\n') Py_RETURN_NONE;
        at = end - data + 2;
    }
    PyObject *texts = PyList_New(0);
    if (texts == NULL) return NULL;
    PyObject *usage = NULL;
    int reasoning = 0, done = 0, outcome = 1;
    for (Py_ssize_t at = 0; at < size && outcome == 1;) {
        const char *payload = data + at + 6;
        const char *end = memchr(payload, '\n', size - at - 6);
        Py_ssize_t length = end - payload;
        at = end - data + 2;
        if (is_done(payload, length)) {
            done = 1;
            if (at < size) outcome = 0; /* more after the marker: the parser judges it all (not UTF-8, say) */
            break;
        }
        PyObject *piece = PyBytes_FromStringAndSize(payload, length);
        if (piece == NULL) {
            outcome = -1;
            break;
        }
        PyObject *obj = PyObject_CallOneArg(loads, piece);
        Py_DECREF(piece);
        if (obj == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
                outcome = -1;
                break;
            }
            PyErr_Clear(); /* malformed JSON: the Python parser judges it */
            outcome = 0;
            break;
        }
        outcome = read_message(obj, texts, &reasoning, &usage);
        Py_DECREF(obj);
    }
    if (outcome != 1) {
        Py_DECREF(texts);
        Py_XDECREF(usage);
        if (outcome < 0) return NULL;
        Py_RETURN_NONE;
    }
    if (usage == NULL) usage = Py_NewRef(Py_None);
    return Py_BuildValue("(NNNN)", texts, PyBool_FromLong(reasoning), usage, PyBool_FromLong(done));
}

static PyObject *scan_openai(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "scan_openai(data: bytes, loads)");
        return NULL;
    }
    return scan_messages(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]), args[1]);
}

/* ChunkedStream(fd, size, max_age_s, loads, head): a streamed answer's chunked body read from its socket, its chunk
 * framing followed here from the body's first byte (`head`: the body bytes that came with the headers). `read()`:
 *   None                      nothing to read (woken for nothing), or whole messages filed into `reader` (an
 *                             AnswerReader, when given) as its `_take` files them, where that is all it would do;
 *   (body, arrived, scanned)  the read was whole chunks of whole messages, read by scan_messages (`scan` must be
 *                             true: the Python parser is between messages); the HTTP parser never sees these bytes,
 *                             and stays, as the framing does, between two chunks;
 *   (raw, arrived, None)      anything else (b"" at the peer's close): the caller feeds the HTTP parser `raw`.
 * The framing followed is plain `SIZE\r\nDATA\r\n` chunks. The last chunk (`0\r\n...`) and what follows it are
 * given to the HTTP parser here (`feed`), after the whole chunks before it, so that it ends the answer. Anything else
 * (an extension, bad syntax) and the body is the HTTP parser's alone to the end (`in_step` false). */
enum framing { AT_SIZE, SIZE_LF, IN_DATA, DATA_CR, DATA_LF, LOST };

typedef struct {
    PyObject_HEAD
    int fd;
    Py_ssize_t size;
    double max_age_s;
    PyObject *loads;
    PyObject *feed;
    Py_ssize_t max_answer_bytes;
    Py_ssize_t max_bytes_without_event;
    int state;
    int digits;
    long long left; /* IN_DATA: bytes left in the chunk; AT_SIZE: the size read so far */
    char scan;
} ChunkedStream;

#define MAX_SIZE_DIGITS 15

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Follow the framing over `raw`, copying chunk data to `body` (room for len bytes, may be NULL); returns the body
 * length. *whole: the bytes were whole chunks, from a chunk's start to the next's; *tail: where the last chunk
 * begins, when whole chunks come before it in these bytes (else -1; the framing is not followed past it). */
static Py_ssize_t follow(ChunkedStream *self, const char *raw, Py_ssize_t len, char *body, int *whole,
                         Py_ssize_t *tail) {
    Py_ssize_t at = 0, taken = 0, line = -1;
    int started = self->state == AT_SIZE && self->digits == 0;
    *tail = -1;
    while (at < len && self->state != LOST) {
        char c = raw[at];
        switch (self->state) {
        case AT_SIZE: {
            int value = hex_value(c);
            if (self->digits == 0) line = at;
            if (value >= 0 && self->digits < MAX_SIZE_DIGITS) {
                self->left = self->left * 16 + value;
                self->digits++;
            } else if (c == '\r' && self->digits > 0 && self->left > 0) {
                self->state = SIZE_LF;
            } else {
                if (c == '\r' && self->digits > 0 && started && line >= 0) *tail = line; /* the last chunk */
                self->state = LOST; /* the last chunk, an extension, or bad syntax */
            }
            at++;
            break;
        }
        case SIZE_LF:
            self->state = c == '\n' ? IN_DATA : LOST;
            self->digits = 0;
            line = -1;
            at++;
            break;
        case IN_DATA: {
            Py_ssize_t n = len - at < self->left ? len - at : (Py_ssize_t)self->left;
            if (body != NULL) memcpy(body + taken, raw + at, n);
            taken += n;
            at += n;
            self->left -= n;
            if (self->left == 0) self->state = DATA_CR;
            break;
        }
        case DATA_CR:
            self->state = c == '\r' ? DATA_LF : LOST;
            at++;
            break;
        case DATA_LF:
            self->state = c == '\n' ? AT_SIZE : LOST;
            at++;
            break;
        }
    }
    *whole = started && self->state == AT_SIZE && self->digits == 0;
    return taken;
}

static int chunked_init(ChunkedStream *self, PyObject *args, PyObject *kwargs) {
    long fd;
    Py_ssize_t size;
    double max_age_s;
    PyObject *loads, *feed;
    Py_buffer head;
    Py_ssize_t max_answer_bytes = PY_SSIZE_T_MAX, max_bytes_without_event = PY_SSIZE_T_MAX;
    static char *names[] = {"fd",   "size", "max_age_s", "loads", "feed", "head", "max_answer_bytes",
                            "max_bytes_without_event", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "lndOOy*|nn", names, &fd, &size, &max_age_s, &loads, &feed, &head,
                                     &max_answer_bytes, &max_bytes_without_event))
        return -1;
    self->max_answer_bytes = max_answer_bytes;
    self->max_bytes_without_event = max_bytes_without_event;
    if (check_read(fd, size) < 0) {
        PyBuffer_Release(&head);
        return -1;
    }
    self->fd = (int)fd;
    self->size = size;
    self->max_age_s = max_age_s;
    Py_XSETREF(self->loads, Py_NewRef(loads));
    Py_XSETREF(self->feed, Py_NewRef(feed));
    self->state = AT_SIZE;
    self->digits = 0;
    self->left = 0;
    self->scan = 1;
    int whole;
    Py_ssize_t tail;
    follow(self, head.buf, head.len, NULL, &whole, &tail);
    PyBuffer_Release(&head);
    return 0;
}

/* An attribute of `obj` as a C number; -1 with an exception raised on failure. */
static int attribute_double(PyObject *obj, PyObject *name, double *value) {
    PyObject *got = PyObject_GetAttr(obj, name);
    if (got == NULL) return -1;
    *value = PyFloat_AsDouble(got);
    Py_DECREF(got);
    return *value == -1.0 && PyErr_Occurred() ? -1 : 0;
}

static int attribute_size(PyObject *obj, PyObject *name, Py_ssize_t *value) {
    PyObject *got = PyObject_GetAttr(obj, name);
    if (got == NULL) return -1;
    *value = PyLong_AsSsize_t(got);
    Py_DECREF(got);
    return *value == -1 && PyErr_Occurred() ? -1 : 0;
}

static int set_size(PyObject *obj, PyObject *name, Py_ssize_t value) {
    PyObject *number = PyLong_FromSsize_t(value);
    int result = number == NULL ? -1 : PyObject_SetAttr(obj, name, number);
    Py_XDECREF(number);
    return result;
}

/* File a read of whole messages into `reader` (an AnswerReader) as its `_take` would, when that is all `_take` would
 * do: no done marker, within the size bounds, not the answer's first output. 1: filed; 0: not (nothing changed: the
 * caller hands the read to `_take`); -1: an exception. */
static int file_quickly(ChunkedStream *self, PyObject *reader, Py_ssize_t size, double arrived, PyObject *scanned) {
    PyObject *texts = PyTuple_GET_ITEM(scanned, 0), *usage = PyTuple_GET_ITEM(scanned, 2);
    int reasoning = PyTuple_GET_ITEM(scanned, 1) == Py_True, done = PyTuple_GET_ITEM(scanned, 3) == Py_True;
    Py_ssize_t count = PyList_GET_SIZE(texts), received, since_event;
    double start;
    if (done) return 0;
    if (attribute_size(reader, a_received, &received) < 0 || attribute_size(reader, a_since_event, &since_event) < 0 ||
        attribute_double(reader, a_start, &start) < 0)
        return -1;
    int output = count > 0 || reasoning;
    since_event = output || usage != Py_None ? 0 : since_event + size;
    if (received + size > self->max_answer_bytes || since_event > self->max_bytes_without_event) return 0;
    PyObject *record = PyObject_GetAttr(reader, a_record);
    if (record == NULL) return -1;
    PyObject *ttfo = NULL, *until = NULL, *last = NULL, *times = NULL, *text = NULL;
    int outcome = -1;
    if ((ttfo = PyObject_GetAttr(record, a_ttfo_ms)) == NULL) goto done;
    if ((until = PyObject_GetAttr(reader, a_until_first_token)) == NULL) goto done;
    int first = output && ttfo == Py_None;
    if (until == Py_True && (first || ttfo != Py_None)) { /* the first output: _take files it (and ends the timeout) */
        outcome = 0;
        goto done;
    }
    double last_ms = (arrived - start > 0.0 ? arrived - start : 0.0) * 1000;
    if ((last = PyFloat_FromDouble(last_ms)) == NULL) goto done;
    if (PyObject_SetAttr(reader, a_last_ms, last) < 0 || set_size(reader, a_received, received + size) < 0 ||
        set_size(reader, a_since_event, since_event) < 0)
        goto done;
    if (first && PyObject_SetAttr(record, a_ttfo_ms, last) < 0) goto done;
    if (count > 0) {
        if ((times = PyObject_GetAttr(record, a_chunk_times_ms)) == NULL) goto done;
        if ((text = PyObject_GetAttr(reader, a_text)) == NULL) goto done;
        for (Py_ssize_t i = 0; i < count; i++) {
            if (PyList_Append(times, last) < 0 || PyList_Append(text, PyList_GET_ITEM(texts, i)) < 0) goto done;
        }
    }
    if (usage != Py_None && PyObject_SetAttr(record, a_usage_tokens, usage) < 0) goto done;
    outcome = 1;
done:
    Py_DECREF(record);
    Py_XDECREF(ttfo);
    Py_XDECREF(until);
    Py_XDECREF(last);
    Py_XDECREF(times);
    Py_XDECREF(text);
    return outcome;
}

static PyObject *chunked_read(ChunkedStream *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "read(reader=None)");
        return NULL;
    }
    PyObject *reader = nargs == 1 && args[0] != Py_None ? args[0] : NULL;
    if (self->loads == NULL || self->feed == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ChunkedStream was not initialised");
        return NULL;
    }
    double arrived;
    PyObject *raw = read_stamped(self->fd, self->size, self->max_age_s, &arrived);
    if (raw == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_BlockingIOError)) return NULL;
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_ssize_t len = PyBytes_GET_SIZE(raw);
    if (len > 0 && self->state != LOST) {
        PyObject *body = PyBytes_FromStringAndSize(NULL, len);
        if (body == NULL) goto failed;
        int whole;
        Py_ssize_t tail;
        Py_ssize_t taken = follow(self, PyBytes_AS_STRING(raw), len, PyBytes_AS_STRING(body), &whole, &tail);
        if (tail >= 0 && len - tail != 5) tail = -1, whole = 0; /* more than `0\r\n\r\n` at the end: the parser's */
        if ((whole || tail >= 0) && self->scan && taken > 0) {
            PyObject *scanned = scan_messages(PyBytes_AS_STRING(body), taken, self->loads);
            if (scanned == NULL || _PyBytes_Resize(&body, taken) < 0) {
                Py_XDECREF(scanned);
                Py_XDECREF(body);
                goto failed;
            }
            if (scanned != Py_None) {
                if (tail >= 0) { /* the last chunk: the HTTP parser ends the answer */
                    PyObject *rest = PyBytes_FromStringAndSize(PyBytes_AS_STRING(raw) + tail, len - tail);
                    PyObject *fed = rest == NULL ? NULL : PyObject_CallOneArg(self->feed, rest);
                    Py_XDECREF(rest);
                    if (fed == NULL) {
                        Py_DECREF(scanned);
                        Py_DECREF(body);
                        goto failed;
                    }
                    Py_DECREF(fed);
                } else if (reader != NULL) {
                    int filed = file_quickly(self, reader, taken, arrived, scanned);
                    if (filed != 0) {
                        Py_DECREF(scanned);
                        Py_DECREF(body);
                        Py_DECREF(raw);
                        if (filed < 0) return NULL;
                        Py_RETURN_NONE;
                    }
                }
                Py_DECREF(raw);
                return Py_BuildValue("(NdN)", body, arrived, scanned);
            }
            Py_DECREF(scanned);
        }
        Py_DECREF(body);
    }
    return Py_BuildValue("(NdO)", raw, arrived, Py_None);
failed:
    Py_DECREF(raw);
    return NULL;
}

static PyObject *chunked_in_step(ChunkedStream *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->state != LOST);
}

static void chunked_dealloc(ChunkedStream *self) {
    Py_XDECREF(self->loads);
    Py_XDECREF(self->feed);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef chunked_methods[] = {
    {"read", (PyCFunction)(void (*)(void))chunked_read, METH_FASTCALL,
     "read(reader=None) -> None | (bytes, arrived, scanned | None): None when nothing came or `reader` was filed"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef chunked_members[] = {
    {"scan", T_BOOL, offsetof(ChunkedStream, scan), 0, "whether whole messages may be read here (the parser is between"
                                                        " messages)"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef chunked_getset[] = {
    {"in_step", (getter)chunked_in_step, NULL, "whether the chunk framing is still followed here", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ChunkedStreamType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "core._speedups.ChunkedStream",
    .tp_basicsize = sizeof(ChunkedStream),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A streamed answer's chunked body, read and its framing followed in C",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)chunked_init,
    .tp_dealloc = (destructor)chunked_dealloc,
    .tp_methods = chunked_methods,
    .tp_members = chunked_members,
    .tp_getset = chunked_getset,
};

/* The key of a value (ms) as core/histogram.py `bucket` gives it; `bucket` itself is called for far values, ones
 * not finite, and numbers that are not a float or an int (their own arithmetic is what bucket uses): its result or
 * its error is Python's. nearbyint rounds halves to even, as round() does, and both divisions are of integers exact
 * in a double. */
static PyObject *bucket_key(PyObject *value, PyObject *bucket) {
    if (!PyFloat_CheckExact(value) && !PyLong_CheckExact(value)) return PyObject_CallOneArg(bucket, value);
    double ms = PyFloat_AsDouble(value);
    if (ms == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return PyObject_CallOneArg(bucket, value);
    }
    double micros = nearbyint(ms * 1000.0);
    if (!isfinite(micros) || micros >= 1e6 || micros <= -1e15) return PyObject_CallOneArg(bucket, value);
    long long key = (long long)micros;
    if (key >= 1000) {
        long long scale = key < 10000 ? 10 : key < 100000 ? 100 : 1000;
        key = (long long)nearbyint((double)key / (double)scale) * scale;
    }
    return PyLong_FromLongLong(key);
}

static PyObject *count_values(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyDict_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "count_values(counts: dict, values, bucket)");
        return NULL;
    }
    PyObject *counts = args[0], *bucket = args[2];
    PyObject *values = PySequence_Fast(args[1], "count_values: values must be iterable");
    if (values == NULL) return NULL;
    Py_ssize_t i = 0;
    for (; i < PySequence_Fast_GET_SIZE(values); i++) {  /* the caller's list itself: held item by item */
        PyObject *value = PySequence_Fast_GET_ITEM(values, i);
        Py_INCREF(value);
        PyObject *key = bucket_key(value, bucket);
        Py_DECREF(value);
        if (key == NULL) goto fail;
        PyObject *count = PyDict_GetItemWithError(counts, key);
        Py_XINCREF(count);  /* adding may call Python code that changes the dict */
        PyObject *next = count == NULL ? (PyErr_Occurred() ? NULL : PyLong_FromLong(1)) : PyNumber_Add(count, one);
        Py_XDECREF(count);
        int failed = next == NULL || PyDict_SetItem(counts, key, next) < 0;
        Py_DECREF(key);
        Py_XDECREF(next);
        if (failed) goto fail;
    }
    Py_DECREF(values);
    return PyLong_FromSsize_t(i);
fail:
    Py_DECREF(values);
    return NULL;
}

static PyMethodDef methods[] = {
    {"recv_stamped", (PyCFunction)(void (*)(void))recv_stamped, METH_FASTCALL,
     "recv_stamped(fd, size, max_age_s) -> (bytes, arrived): one non-blocking read and its arrival time"},
    {"scan_openai", (PyCFunction)(void (*)(void))scan_openai, METH_FASTCALL,
     "scan_openai(data, loads) -> (texts, reasoning, usage, done) or None: whole OpenAI SSE messages read"},
    {"count_values", (PyCFunction)(void (*)(void))count_values, METH_FASTCALL,
     "count_values(counts, values, bucket) -> int: each value (ms) counted under its histogram key"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef definition = {PyModuleDef_HEAD_INIT, "core._speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) {
    struct {
        PyObject **key;
        const char *text;
    } keys[] = {{&k_choices, "choices"}, {&k_delta, "delta"}, {&k_content, "content"},
                {&k_reasoning_content, "reasoning_content"}, {&k_reasoning, "reasoning"}, {&k_text, "text"},
                {&k_usage, "usage"}, {&k_completion_tokens, "completion_tokens"}, {&k_error, "error"},
                {&k_object, "object"}, {&a_record, "record"}, {&a_text, "text"}, {&a_start, "start"},
                {&a_last_ms, "last_ms"}, {&a_received, "received"}, {&a_since_event, "_since_event"},
                {&a_until_first_token, "_until_first_token"}, {&a_chunk_times_ms, "chunk_times_ms"},
                {&a_ttfo_ms, "ttfo_ms"}, {&a_usage_tokens, "usage_tokens"}};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        *keys[i].key = PyUnicode_InternFromString(keys[i].text);
        if (*keys[i].key == NULL) return NULL;
    }
    one = PyLong_FromLong(1);
    if (one == NULL) return NULL;
    if (PyType_Ready(&ChunkedStreamType) < 0) return NULL;
    PyObject *module = PyModule_Create(&definition);
    if (module == NULL) return NULL;
    if (PyModule_AddObjectRef(module, "ChunkedStream", (PyObject *)&ChunkedStreamType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
