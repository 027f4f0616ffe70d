// Python scripts that mount tests run against files on a mount, shared by several test files.

// Handle A reads the first MiB, prints a line and waits for one on stdin (the file is replaced
// remotely in between). Then handle B reads the whole file, A reads the rest, and both close.
export const OVERLAP_SCRIPT = `
import hashlib, json, os, sys
path = sys.argv[1]
a = os.open(path, os.O_RDONLY)
head = os.pread(a, 1 << 20, 0)
print("ready", flush=True)
sys.stdin.readline()
b = os.open(path, os.O_RDONLY)
whole = bytearray()
while True:
    chunk = os.pread(b, 65536, len(whole))
    if not chunk: break
    whole += chunk
rest = bytearray()
while True:
    chunk = os.pread(a, 65536, len(head) + len(rest))
    if not chunk: break
    rest += chunk
os.close(a)
os.close(b)
print(json.dumps([hashlib.sha256(head + rest).hexdigest(), hashlib.sha256(whole).hexdigest()]))
`;
