# scripts/test-system's HTTP client inside the container (no curl there):
#   python3 client.py METHOD URL [BODY] [TOKEN_FILE]  → prints "STATUS BODY"
import sys
import urllib.error
import urllib.request

method, url = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 and sys.argv[3] else None
req = urllib.request.Request(url, data=body, method=method)
if body is not None:
    req.add_header("Content-Type", "application/json")
if len(sys.argv) > 4:
    req.add_header("Authorization", "Bearer " + open(sys.argv[4]).read().strip())
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
