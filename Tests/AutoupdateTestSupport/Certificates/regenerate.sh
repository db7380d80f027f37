#!/usr/bin/env bash
# Regenerates the test PKI used by the HTTPS test server (tests, `make demo`, `make bench`).
# Test-only: these keys are public, so never add ca.pem to a real trust store.
#
#   ca.pem / ca-key.pem              the test CA that tests pass as `caFile`
#   server.pem / server-key.pem      127.0.0.1 and localhost, signed by the test CA
#   wrong-host.pem / wrong-host-key.pem  wrong.invalid only, signed by the test CA (host mismatch)
#   other-ca.pem                     a CA nobody trusts (a "wrong trust anchor" case)
#
# Validity: 100 years, so the committed files outlive the project. Run from this folder.
set -euo pipefail
cd "$(dirname "$0")"
days=36500
ext=$(mktemp)
trap 'rm -f "$ext" *.csr *.srl' EXIT

openssl ecparam -name prime256v1 -genkey -noout -out ca-key.pem
openssl req -x509 -new -key ca-key.pem -sha256 -days "$days" -subj "/CN=autoupdate test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem

issue() { # name, subjectAltName
  openssl ecparam -name prime256v1 -genkey -noout -out "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "/CN=autoupdate test $1" -out "$1.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$2" > "$ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -sha256 -days "$days" \
    -extfile "$ext" -out "$1.pem"
}
issue server "IP:127.0.0.1,DNS:localhost"
issue wrong-host "DNS:wrong.invalid"

openssl ecparam -name prime256v1 -genkey -noout -out other-ca-key.pem
openssl req -x509 -new -key other-ca-key.pem -sha256 -days "$days" -subj "/CN=autoupdate untrusted CA" \
  -addext "basicConstraints=critical,CA:TRUE" -out other-ca.pem
rm -f other-ca-key.pem
