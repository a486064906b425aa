# Plays the Apache child for one request where descriptors may arrive (FILE frames with SCM_RIGHTS),
# which Node's sockets cannot receive. Usage: fd-client.py SOCKET OUTFILE < request-frames
# Sends stdin's bytes, reads the answer, writes the response body (FILE frames resolved by reading the
# passed descriptor) to OUTFILE and prints a JSON summary on stdout.
import array
import json
import os
import socket
import struct
import sys

sock_path, out_path = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
s.sendall(sys.stdin.buffer.read())

buf = bytearray()
fds = []
summary = {'kind': None, 'status': None, 'frames': [], 'fds_received': 0, 'fds_left_open': 0}


def fill(n):
    while len(buf) < n:
        data, anc, _flags, _addr = s.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array('i')
                got.frombytes(payload[:len(payload) - len(payload) % 4])
                fds.extend(got)
                summary['fds_received'] += len(got)
        if not data:
            raise EOFError('connection closed')
        buf.extend(data)


with open(out_path, 'wb') as out:
    try:
        while True:
            fill(8)
            _version, ftype, _flags, length = struct.unpack('>BBHI', bytes(buf[:8]))
            fill(8 + length)
            payload = bytes(buf[8:8 + length])
            del buf[:8 + length]
            summary['frames'].append(ftype)
            if ftype == 0x11:
                summary['status'] = struct.unpack('>I', payload[:4])[0]
            elif ftype == 0x12:
                out.write(payload)
            elif ftype == 0x14:
                offset, count = struct.unpack('>QQ', payload)
                fd = fds.pop(0)
                if count == 0xFFFFFFFFFFFFFFFF:
                    count = os.fstat(fd).st_size - offset
                while count > 0:
                    block = os.pread(fd, min(count, 1 << 20), offset)
                    if not block:
                        break
                    out.write(block)
                    offset += len(block)
                    count -= len(block)
                os.close(fd)
            elif ftype in (0x13, 0x15, 0x16):
                summary['kind'] = {0x13: 'response', 0x15: 'error', 0x16: 'goaway'}[ftype]
                break
    except EOFError:
        summary['kind'] = 'closed'
summary['fds_left_open'] = len(fds)
print(json.dumps(summary))
