#!/usr/bin/env python3
"""region_word.py PATH WHAT [VALUE]: read (or write) one 64-bit word of an
xdpvs region, named by what the test needs: `pid` (the header's daemon pid),
`view_seq` (the configuration view's sequence lock), `slot0_state` (the
first command slot's state; 32-bit), `slot0` (write VALUE bytes of garbage as
a submitted request from a dead client). Offsets follow the header's layout
words (dataplane/api/src/shm.rs)."""
import os, struct, sys

HEADER_WORDS, SLOT_HEAD = 64, 8
H_PID, H_SLOTS, H_SLOT_BYTES = 2, 10, 11
S_STATE, S_OWNER, S_REQ_LEN = 0, 1, 2
SUBMITTED = 2

path, what = sys.argv[1], sys.argv[2]
value = int(sys.argv[3]) if len(sys.argv) > 3 else None
with open(path, "r+b") as f:
    def word(i, v=None):
        f.seek(i * 8)
        if v is None:
            return struct.unpack("<Q", f.read(8))[0]
        f.write(struct.pack("<Q", v))
    slots, slot_bytes = word(H_SLOTS), word(H_SLOT_BYTES)
    slot0 = HEADER_WORDS
    at = {"pid": H_PID, "view_seq": HEADER_WORDS + slots * (SLOT_HEAD + slot_bytes // 8)}
    if what == "slot0":
        f.seek((slot0 + SLOT_HEAD) * 8)
        f.write(os.urandom(value))
        word(slot0 + S_REQ_LEN, value)
        word(slot0 + S_OWNER, 0)
        word(slot0 + S_STATE, SUBMITTED)
    elif value is None:
        print(word(at[what]))
    else:
        word(at[what], value)
