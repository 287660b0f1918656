#!/usr/bin/env python3
"""Takes the README's dashboard screenshot (docs/dashboard.png) from a real node.

Starts `target/release/dwcp up` on 127.0.9.11, makes a user with a TOTP second
factor, sends varying load to the example app for SECONDS (default 90), signs in
with headless Chromium through chromedriver (Debian's chromium and
chromium-driver) and saves the overview and apps pages as PNGs. Run it after
`cargo build --release`:  python3 scripts/dashboard-screenshot.py [SECONDS]
The test suite does the same in Rust (crates/dwcp/tests/dashboard.rs); this
script only refreshes the picture.
"""
import base64, hashlib, hmac, json, os, struct, subprocess, sys, threading, time, urllib.request

API = "127.0.9.11:7070"; GW = "127.0.9.11:8080"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = "/tmp/dwcp-dashboard-screenshot"
os.makedirs(WORK, exist_ok=True)
d = f"{WORK}/data"
subprocess.run(["rm", "-rf", d])
node = subprocess.Popen([f"{ROOT}/target/release/dwcp", "up", "--data-dir", d, "--listen", "127.0.9.11:7071",
                         "--api", API, "--gateway", GW], stdout=subprocess.PIPE, stderr=open(f"{WORK}/node.log", "w"), text=True)
admin = None
while admin is None:
    line = node.stdout.readline()
    if line.startswith("admin token:"): admin = line.split()[-1]

def api(method, path, body=None, token=admin):
    req = urllib.request.Request(f"http://{API}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    for _ in range(100):
        try:
            with urllib.request.urlopen(req) as r: return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            if e.code in (503,): time.sleep(0.2); continue
            raise Exception(f"{method} {path}: {e.code} {e.read()}")
        except urllib.error.URLError: time.sleep(0.2)

def totp(secret, t):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    h = hmac.new(key, struct.pack(">Q", t // 30), hashlib.sha1).digest()
    o = h[-1] & 15
    return "%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7fffffff) % 1000000)

time.sleep(2)
api("POST", "/api/v1/users", {"name": "ana", "password": "correct horse battery staple", "roles": {"*": "operator"}})
secret = api("POST", "/api/v1/users/ana/totp", {})["secret"]
now = int(time.time())
api("POST", "/api/v1/users/ana/totp/confirm", {"code": totp(secret, now)})

stop = False
def load():
    i = 0
    while not stop:
        i += 1
        rate = 40 + 30 * ((i // 400) % 3)
        try: urllib.request.urlopen(f"http://{GW}/hello").read()
        except Exception: pass
        time.sleep(1 / rate)
threads = [threading.Thread(target=load) for _ in range(2)]
for t in threads: t.start()
time.sleep(int(sys.argv[1]) if len(sys.argv) > 1 else 90)

drv = subprocess.Popen(["chromedriver", "--port=9561"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1)
def wd(method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:9561{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r: return json.loads(r.read())["value"]
s = wd("POST", "/session", {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
    "binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,900", f"--user-data-dir={WORK}/profile"]}}}})["sessionId"]
S = f"/session/{s}"
E = "element-6066-11e4-a52e-4f735466cecf"
wd("POST", S + "/url", {"url": f"http://{API}/login"})
for css, text in [("#user", "ana"), ("#password", "correct horse battery staple"), ("#totp", totp(secret, int(time.time()) + 30))]:
    el = wd("POST", S + "/element", {"using": "css selector", "value": css})[E]
    wd("POST", S + f"/element/{el}/value", {"text": text})
el = wd("POST", S + "/element", {"using": "css selector", "value": "#signin"})[E]
wd("POST", S + f"/element/{el}/click", {})
time.sleep(4)
for page, name in [("/", "dashboard.png"), ("/apps", "dashboard-apps.png")]:
    wd("POST", S + "/url", {"url": f"http://{API}{page}"})
    time.sleep(3)
    open(f"{ROOT}/docs/{name}" if name == "dashboard.png" else f"{WORK}/{name}", "wb").write(base64.b64decode(wd("GET", S + "/screenshot")))
stop = True
wd("DELETE", S)
drv.kill(); node.kill()
print("saved docs/dashboard.png")
