"""Group chat: PlenaryUser and its delivery bookkeeping."""
