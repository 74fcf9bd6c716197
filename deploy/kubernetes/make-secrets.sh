#!/usr/bin/env bash
# make-secrets.sh writes the two Secrets the StatefulSets mount, for a first
# install or a test cluster:
#
#   sqlraft-tls    tls.crt, tls.key, ca.crt: a cluster CA and one certificate
#                  for every pod (a wildcard over the peers service) and the
#                  client service, used for the client port and between nodes
#   sqlraft-users  users.yaml: an "admin" user with every permission and a
#                  "reader" with query and status, with fresh random passwords
#
# Usage: make-secrets.sh [-n NAMESPACE] [-o DIR] [-d DAYS]
#   -n  namespace the pods run in (default sqlraft): the certificate names it
#   -o  output directory (default ./sqlraft-secrets); it must not exist yet
#   -d  certificate lifetime in days (default 365)
# Needs openssl and sqlraftd (set SQLRAFTD=/path/to/sqlraftd if it is not on
# PATH). Then:  kubectl -n NAMESPACE apply -f DIR/secrets.yaml
#
# DIR keeps ca.key (to issue the next certificate; keep it offline), ca.crt
# (for clients: sqlraft --ca, grpcurl -cacert) and the passwords (mode 0600).
# In production prefer cert-manager: a Certificate whose secretName is
# sqlraft-tls, with the same DNS names, renews in place and the nodes pick the
# new files up without a restart.
set -euo pipefail

ns=sqlraft out=./sqlraft-secrets days=365
while getopts "n:o:d:" opt; do
  case $opt in
    n) ns=$OPTARG ;;
    o) out=$OPTARG ;;
    d) days=$OPTARG ;;
    *) sed -n '2,22p' "$0" >&2; exit 2 ;;
  esac
done
sqlraftd=${SQLRAFTD:-sqlraftd}
command -v openssl >/dev/null || { echo "make-secrets.sh: openssl is needed" >&2; exit 1; }
command -v "$sqlraftd" >/dev/null || { echo "make-secrets.sh: $sqlraftd not found (set SQLRAFTD)" >&2; exit 1; }
[ -e "$out" ] && { echo "make-secrets.sh: $out exists; refusing to overwrite keys" >&2; exit 1; }
mkdir -m 0700 -p "$out"
cd "$out"

# The names every node advertises (--grpc-advertise, --raft-advertise: the
# pod's name under the peers service), the client service, and localhost for
# kubectl port-forward.
san="DNS:*.sqlraft-peers.$ns.svc.cluster.local,DNS:*.sqlraft-peers.$ns.svc"
san+=",DNS:sqlraft.$ns.svc.cluster.local,DNS:sqlraft.$ns.svc,DNS:sqlraft,DNS:localhost,IP:127.0.0.1"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
  -days "$days" -subj "/CN=sqlraft cluster CA ($ns)" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key -out tls.csr \
  -subj "/CN=sqlraft.$ns" 2>/dev/null
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tls.crt -days "$days" \
  -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\n' "$san") \
  2>/dev/null
rm -f tls.csr ca.srl

password() { openssl rand -base64 24 | tr -d '/+=' | cut -c1-24; }
admin_pw=$(password) reader_pw=$(password)
printf '%s\n' "$admin_pw" >admin-password
printf '%s\n' "$reader_pw" >reader-password
admin_hash=$(printf '%s' "$admin_pw" | "$sqlraftd" hash-password)
reader_hash=$(printf '%s' "$reader_pw" | "$sqlraftd" hash-password)
cat >users.yaml <<EOF
users:
  - name: admin
    password_hash: "$admin_hash"
    permissions: [all]
  - name: reader
    password_hash: "$reader_hash"
    permissions: [query, status]
EOF
chmod 0600 ./*

b64() { base64 -w0 <"$1"; }
cat >secrets.yaml <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: sqlraft-tls
  labels:
    app.kubernetes.io/name: sqlraft
type: kubernetes.io/tls
data:
  tls.crt: $(b64 tls.crt)
  tls.key: $(b64 tls.key)
  ca.crt: $(b64 ca.crt)
---
apiVersion: v1
kind: Secret
metadata:
  name: sqlraft-users
  labels:
    app.kubernetes.io/name: sqlraft
type: Opaque
data:
  users.yaml: $(b64 users.yaml)
EOF
chmod 0600 secrets.yaml
echo "wrote $out: apply with  kubectl -n $ns apply -f $out/secrets.yaml" >&2
echo "admin's password is in $out/admin-password; clients trust $out/ca.crt" >&2
