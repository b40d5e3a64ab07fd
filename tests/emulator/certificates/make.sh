#!/bin/sh
# Regenerates the test-only certificates of the emulator's seed app mailhost-daemon-cert.
# The private keys are public test fixtures: never use them anywhere else.
set -eu
cd "$(dirname "$0")"
PASS='Fixture-Passw0rd!'
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out key.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other-key.pem
openssl req -x509 -key key.pem -out cert.pem -days 36500 -subj "/CN=mailhost-daemon-cert test certificate" -sha256
openssl req -x509 -key other-key.pem -out other-cert.pem -days 36500 -subj "/CN=mailhost unregistered test certificate" -sha256
cat cert.pem key.pem > app.pem
openssl rsa -in key.pem -traditional -out key-pkcs1.pem
cat cert.pem key-pkcs1.pem > app-pkcs1.pem
openssl pkcs8 -topk8 -v2 aes256 -in key.pem -passout "pass:$PASS" -out key-encrypted.pem
cat cert.pem key-encrypted.pem > app-encrypted.pem
openssl rsa -in key.pem -traditional -aes256 -passout "pass:$PASS" -out key-legacy-encrypted.pem
cat cert.pem key-legacy-encrypted.pem > app-legacy-encrypted.pem
openssl pkcs12 -export -in cert.pem -inkey key.pem -passout "pass:$PASS" -out app.pfx
cat cert.pem other-key.pem > mismatch.pem
cat other-cert.pem other-key.pem > unregistered.pem
rm key-pkcs1.pem key-encrypted.pem key-legacy-encrypted.pem
