#!/bin/sh
# Provision a Samba AD DC at container start, then run it in the foreground.
#
# Environment (defaults in the Dockerfile):
#   SAMBA_REALM             Kerberos realm / DNS domain, e.g. JUNO.TEST (base DN DC=juno,DC=test)
#   SAMBA_DOMAIN            NetBIOS domain name, e.g. JUNO
#   SAMBA_HOST_NAME         NetBIOS host name of the DC (default: the container's short host name)
#   SAMBA_ADMIN_PASSWORD    password of CN=Administrator,CN=Users,<base DN>
#   SAMBA_LDAP_STRONG_AUTH  "ldap server require strong auth": yes (default; simple binds only
#                           over TLS), allow_sasl_over_tls or no (also plain simple binds on 389)
#   SAMBA_LOG_LEVEL         Samba log level (0 = errors only)
#   SAMBA_BACKEND_STORE     sam.ldb backend: mdb (LMDB, default) or tdb
#   SAMBA_LDB_NOSYNC        yes (default): no fsync per LDAP write ("ldb:nosync"); a test domain
#                           does not need durability and bulk seeding is several times faster
# TLS: when /etc/samba/tls holds server.pem and server.key (and optionally ca.pem) they are
# copied to /var/lib/samba/private/juno-tls with the modes Samba insists on and used for
# LDAPS/StartTLS; otherwise Samba generates its self-signed certificate.
# Any arguments are passed on to samba.
set -eu

realm=${SAMBA_REALM:-JUNO.TEST}
domain=${SAMBA_DOMAIN:-JUNO}
host=${SAMBA_HOST_NAME:-$(hostname -s)}
host=$(printf '%s' "$host" | cut -c1-15)
pass=${SAMBA_ADMIN_PASSWORD:?SAMBA_ADMIN_PASSWORD must not be empty}
strong=${SAMBA_LDAP_STRONG_AUTH:-yes}
level=${SAMBA_LOG_LEVEL:-0}
store=${SAMBA_BACKEND_STORE:-mdb}
case "${SAMBA_LDB_NOSYNC:-yes}" in yes|true|1) nosync=true ;; *) nosync=false ;; esac
conf=/etc/samba/smb.conf
src=/etc/samba/tls
tls=/var/lib/samba/private/juno-tls

if [ ! -f /var/lib/samba/private/sam.ldb ]; then
  echo "juno-samba: provisioning realm $realm (domain $domain, host $host)"
  rm -f "$conf"
  samba-tool domain provision --quiet \
    --server-role=dc --dns-backend=NONE --use-rfc2307 \
    --realm="$realm" --domain="$domain" --host-name="$host" \
    --adminpass="$pass" --backend-store="$store" \
    --option="ldb:nosync = $nosync" \
    --option="log level = $level" \
    --option="ldap server require strong auth = $strong" >/dev/null
  # Only what LDAP clients and Kerberos need: no file server (smbd), NetBIOS, DNS updates,
  # replication or winbindd in a single-DC test domain.
  sed -i -e '/^[[:space:]]*server services =/d' \
    -e '/^\[global\]/a\	server services = ldap, cldap, kdc, rpc\n\tdisable netbios = yes' "$conf"
fi

if [ -f "$src/server.pem" ] && [ -f "$src/server.key" ]; then
  install -d -m 0700 "$tls"
  install -m 0600 "$src/server.key" "$tls/key.pem"
  install -m 0644 "$src/server.pem" "$tls/cert.pem"
  # Samba needs a CA file (for client certificates, which nobody sends here): the CA when it is
  # given, else the server certificate itself.
  if [ -f "$src/ca.pem" ]; then
    install -m 0644 "$src/ca.pem" "$tls/ca.pem"
  else
    install -m 0644 "$src/server.pem" "$tls/ca.pem"
  fi
  if ! grep -q 'juno-tls' "$conf"; then
    sed -i "/^\[global\]/a\\	tls enabled = yes\n\ttls keyfile = $tls/key.pem\n\ttls certfile = $tls/cert.pem\n\ttls cafile = $tls/ca.pem" "$conf"
  fi
  echo "juno-samba: TLS certificate from $src"
else
  echo "juno-samba: no $src/server.pem + server.key, using Samba's self-signed certificate"
fi

echo "juno-samba: starting samba"
exec samba --interactive --model=single --debuglevel="$level" --no-process-group "$@"
