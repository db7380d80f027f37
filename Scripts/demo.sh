#!/usr/bin/env bash
# make demo: an app installed, run, and updated from 1.0 to 2.0 over a local HTTPS server by
# `autoupdate run`, with 2.0 first held back by a staged rollout, then fetched differentially;
# then `autoupdate watch` keeping a service up, and rolling back a 3.0 that never gets ready.
# Everything happens in a temporary folder; the server stops when the demo ends.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -t 1 ]; then bold=$'\033[1m'; plain=$'\033[0m'; else bold=""; plain=""; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

say "Building autoupdate (the demo's HTTPS server is Debian's nginx)"
swift build --product autoupdate 2>&1 | tail -n 1
bin=$(swift build --show-bin-path)
nginx=$(command -v nginx || echo /usr/sbin/nginx)
autoupdate="$bin/autoupdate"

demo=$(mktemp -d -t autoupdate-demo-XXXXXX)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$demo"
}
trap cleanup EXIT

say "Making a test certificate (a throw-away CA, and a certificate for 127.0.0.1 it signs)"
openssl ecparam -name prime256v1 -genkey -noout -out "$demo/ca-key.pem"
openssl req -x509 -new -key "$demo/ca-key.pem" -sha256 -days 2 -subj "/CN=autoupdate demo CA" -out "$demo/ca.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$demo/server-key.pem"
openssl req -new -key "$demo/server-key.pem" -subj "/CN=127.0.0.1" -out "$demo/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$demo/ext.cnf"
openssl x509 -req -in "$demo/server.csr" -CA "$demo/ca.pem" -CAkey "$demo/ca-key.pem" -CAcreateserial \
  -days 2 -sha256 -extfile "$demo/ext.cnf" -out "$demo/server.pem" 2>/dev/null
echo "CA: $demo/ca.pem"

say "Three versions of a small app"
for version in 1.0 2.0; do
  mkdir -p "$demo/src-$version/bin" "$demo/src-$version/share"
  cat > "$demo/src-$version/bin/hello" <<SCRIPT
#!/bin/sh
here=\$(dirname "\$0")
echo "Hello, \$1! I am version $version, running as pid \$\$ under autoupdate (pid \$AUTOUPDATE_PID)."
echo "News: \$(cat "\$here/../share/news.txt")"
echo "Asking for updates from inside the app, as pyautoupdate's check_new: \$("$autoupdate" check)"
SCRIPT
  chmod +x "$demo/src-$version/bin/hello"
done
# A long-running service for `autoupdate watch`: ready once it has written its ready file.
for version in 1.0 2.0 3.0; do
  mkdir -p "$demo/src-$version/bin"
  if [ "$version" = 3.0 ]; then ready=": never ready: 3.0 hangs at its start"; else ready="touch \"\$AUTOUPDATE_DIR/ready-$version\""; fi
  printf '#!/bin/sh\n%s\nexec sleep 3600\n' "$ready" > "$demo/src-$version/bin/service"
  chmod +x "$demo/src-$version/bin/service"
done
echo "(the first release)" > "$demo/src-1.0/share/news.txt"
# The same in both releases (64 kB that barely compress): the differential update reuses it
# instead of fetching it.
head -c 48000 /dev/urandom | base64 > "$demo/src-1.0/share/manual.txt"
cp "$demo/src-1.0/share/manual.txt" "$demo/src-2.0/share/manual.txt"
echo "(only the changed files' bytes fetched over HTTPS, each checked against the signed release index, installed atomically)" > "$demo/src-2.0/share/news.txt"
mkdir -p "$demo/src-3.0/share"
cp "$demo/src-2.0/bin/hello" "$demo/src-3.0/bin/hello"
cp "$demo/src-2.0/share/"* "$demo/src-3.0/share/"
find "$demo/src-1.0" "$demo/src-2.0" -type f | sed "s|$demo/||" | sort

say "A signing key for releases (the app pins its public half)"
"$autoupdate" keygen --secret-key "$demo/release.key" --public-key "$demo/release.pub"

say "Publishing 1.0, signed, to the server folder, and serving it over HTTPS on 127.0.0.1 with nginx"
"$autoupdate" publish "$demo/src-1.0" --version 1.0 --out "$demo/server" --secret-key "$demo/release.key"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$demo/nginx"
# As root, nginx's workers would run as nobody, who cannot read the demo's private folder.
cat > "$demo/nginx/nginx.conf" <<CONF
$([ "$(id -u)" = 0 ] && echo "user root;")
daemon off;
worker_processes 1;
pid $demo/nginx/nginx.pid;
error_log $demo/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  default_type application/octet-stream;
  client_body_temp_path $demo/nginx/body; proxy_temp_path $demo/nginx/proxy; fastcgi_temp_path $demo/nginx/fastcgi;
  uwsgi_temp_path $demo/nginx/uwsgi; scgi_temp_path $demo/nginx/scgi;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $demo/server.pem;
    ssl_certificate_key $demo/server-key.pem;
    root $demo/server;
  }
}
CONF
"$nginx" -c "$demo/nginx/nginx.conf" -p "$demo/nginx" -e "$demo/nginx/error.log" &
server_pid=$!
# Until it listens (at most ten seconds).
for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
url="https://127.0.0.1:$port/"
echo "serving $url"

say "autoupdate run: installs 1.0 into an empty app folder, then runs the app"
echo "\$ autoupdate run bin/hello --url $url --dir app --ca-file ca.pem --public-key release.pub -- world"
"$autoupdate" run bin/hello --url "$url" --dir "$demo/app" --ca-file "$demo/ca.pem" --public-key "$demo/release.pub" -- world

say "Publishing 2.0 as a staged rollout, halted at 0 %: no install is offered it yet"
echo "Starts faster." > "$demo/notes.txt"
"$autoupdate" publish "$demo/src-2.0" --version 2.0 --out "$demo/server" --secret-key "$demo/release.key" --rollout 0 --notes "$demo/notes.txt"
echo "\$ autoupdate check --json --url $url --dir app --ca-file ca.pem --public-key release.pub"
"$autoupdate" check --json --url "$url" --dir "$demo/app" --ca-file "$demo/ca.pem" --public-key "$demo/release.pub"

say "Rolling 2.0 out to every install (release.json gets a new serial, signed)"
"$autoupdate" rollout 2.0 100 --out "$demo/server" --secret-key "$demo/release.key"
"$autoupdate" check --json --url "$url" --dir "$demo/app" --ca-file "$demo/ca.pem" --public-key "$demo/release.pub"

say "The next start checks, downloads and installs 2.0, then runs it"
echo "\$ autoupdate run bin/hello --url $url --dir app --ca-file ca.pem --public-key release.pub -- world"
"$autoupdate" run bin/hello --url "$url" --dir "$demo/app" --ca-file "$demo/ca.pem" --public-key "$demo/release.pub" -- world
echo "(exit status $?: the app's own)"

say "What the app folder keeps (pyautoupdate's layout)"
echo "version.txt:       $(cat "$demo/app/version.txt")"
echo "filelist.txt:      $(tr '\n' ' ' < "$demo/app/filelist.txt")"
echo "version_check.log:"
sed 's/^/  /' "$demo/app/version_check.log"
echo ".pyautodownloads/autoupdate-audit.jsonl (the differential download, then the install):"
grep -E '"delta-staged"|"installed"' "$demo/app/.pyautodownloads/autoupdate-audit.jsonl" | tail -n 2 | sed 's/^/  /'


say "autoupdate watch: keeps bin/service running; a new version must be ready within 3 s"
health='test -e ready-$(cat version.txt)'
echo "\$ autoupdate watch bin/service --url $url --dir app --ca-file ca.pem --public-key release.pub --interval 1 --jitter 0 --health-window 3 --health-cmd '$health' --health-interval 0.5"
"$autoupdate" watch bin/service --url "$url" --dir "$demo/app" --ca-file "$demo/ca.pem" --public-key "$demo/release.pub" \
  --interval 1 --jitter 0 --health-window 3 --health-cmd "$health" --health-interval 0.5 2> "$demo/watch.log" &
watch_pid=$!
wait_for() { # a line in the watch's log, for at most a minute
  for _ in $(seq 1 240); do grep -q "$1" "$demo/watch.log" && return 0; sleep 0.25; done
  echo "the watch did not print '$1' within a minute:"; cat "$demo/watch.log"; kill "$watch_pid"; exit 1
}
wait_for "started 2.0"
say "Publishing 3.0, which hangs at its start: the watch installs it on trial, then rolls it back"
"$autoupdate" publish "$demo/src-3.0" --version 3.0 --out "$demo/server" --secret-key "$demo/release.key" > /dev/null
wait_for "rolled back 3.0"
wait_for "started 2.0 (pid .*)$"
kill -TERM "$watch_pid"; wait "$watch_pid" || true
sed 's/^/  /' "$demo/watch.log"

say "autoupdate status: 2.0 runs again, 3.0 is bad and never installed again"
"$autoupdate" status --dir "$demo/app"

say "Done: the server is stopped and the demo folder removed"
