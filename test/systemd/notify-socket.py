#!/usr/bin/python3
# Plays systemd's side of Type=notify for the tests: binds a unix datagram socket (a path, or
# "@name" in the abstract namespace), asks the kernel for each sender's credentials
# (SO_PASSCRED, as systemd does), and prints one JSON line per datagram:
#   {"pid": <sender pid>, "uid": ..., "text": "READY=1\n..."}
# The first line is {"listening": <address>}. systemd decides NotifyAccess=main by that pid:
# so can the tests. Node cannot receive AF_UNIX datagrams, hence this helper.
import json
import socket
import struct
import sys

address = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
sock.bind("\0" + address[1:] if address.startswith("@") else address)
print(json.dumps({"listening": address}), flush=True)
ucred = struct.calcsize("iII")
while True:
    data, ancillary, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(ucred))
    pid = uid = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid, uid, _gid = struct.unpack("iII", payload[:ucred])
    print(json.dumps({"pid": pid, "uid": uid, "text": data.decode("utf-8", "replace")}), flush=True)
