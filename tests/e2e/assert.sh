#!/bin/bash
# Checks, on the machine itself, that one of the four seed playbooks did what
# it promises. Shared by the booted-machine tests (tests/e2e.rs) and the
# Vagrant boxes (vagrant/provision.sh), so both prove the same things.
#
#   tests/e2e/assert.sh SCENARIO PLAYBOOK
#
# SCENARIO is letsencrypt, self-signed, oauth2 or mtls (the playbooks in
# playbooks/). Run it after `portico apply PLAYBOOK`. It installs the test
# backends (tests/e2e/backends.conf) into nginx's conf.d first.
#
# Environment:
#   PORTICO          the binary (default: portico on PATH)
#   CA_FILE          the root the served certificate must verify against
#                    (ACME scenarios: the ACME server's root; default for the
#                    self-signed ones: the certificate itself)
#   EXPECT_FIREWALL  ufw, firewalld, iptables or none; default: whichever is
#                    active. "none" is never assumed: say it.
#
# Prints one line per check ("ok" or "FAIL" and why) and exits 1 when any
# check failed, 2 on bad usage or a missing tool (named).
set -u
scenario=${1:-}
playbook=${2:-}
PORTICO=${PORTICO:-portico}
here=$(cd "$(dirname "$0")" && pwd)

if [ -z "$scenario" ] || [ ! -f "$playbook" ]; then
    echo "usage: $0 letsencrypt|self-signed|oauth2|mtls PLAYBOOK" >&2
    exit 2
fi
for tool in curl openssl testssl.sh; do
    t=$tool
    [ "$tool" = testssl.sh ] && ! command -v testssl.sh >/dev/null && t=testssl
    if ! command -v "$t" >/dev/null; then
        echo "missing tool: $tool (Debian/Ubuntu: apt-get install $tool; EL: dnf install $tool from EPEL)" >&2
        exit 2
    fi
done
TESTSSL=$(command -v testssl.sh || command -v testssl)

# What each playbook serves: names, HTTPS port, certificate file name,
# whether port 80 redirects, and the ports the firewall must allow.
case $scenario in
letsencrypt)
    names="example.com www.example.com"; port=443; cert=example; redirect=301; fw_ports="80 443" ;;
self-signed)
    names="app.internal"; port=443; cert=internal; redirect=301; fw_ports="80 443" ;;
oauth2)
    names="grafana.example.com kibana.example.com"; port=443; cert=internal; redirect=301; fw_ports="80 443" ;;
mtls)
    names="api.example.com"; port=8443; cert=api; redirect=301; fw_ports="80 8443" ;;
*)
    echo "unknown scenario $scenario (letsencrypt, self-signed, oauth2, mtls)" >&2
    exit 2 ;;
esac
first=${names%% *}
origin=https://$first
[ "$port" = 443 ] || origin=$origin:$port
crt=/etc/ssl/portico/certs/$cert.crt
key=/etc/ssl/portico/private/$cert.key
CA_FILE=${CA_FILE:-$crt}

failures=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
# check DESCRIPTION COMMAND...: the command's output is shown when it fails.
check() {
    local what=$1; shift
    if "$@" >"$out" 2>&1; then pass "$what"; else fail "$what"; sed 's/^/       /' "$out" | tail -20; fi
}
# expect DESCRIPTION WANT GOT
expect() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: want '$2', got '$3'"; fi
}
# expect_in DESCRIPTION NEEDLE HAYSTACK
expect_in() {
    case $3 in *"$2"*) pass "$1" ;; *) fail "$1: '$2' not in: $3" ;; esac
}
# A request to this machine for a name the playbook serves, resolved to
# 127.0.0.1 without touching /etc/hosts. Prints "CODE REDIRECT|BODY".
get() {
    local url=$1; shift
    local host=${url#*://}; host=${host%%/*}; host=${host%%:*}
    local p=443; case $url in http://*) p=80 ;; esac
    case ${url#*://} in *:[0-9]*/*) p=${url#*://}; p=${p%%/*}; p=${p##*:} ;; esac
    curl -s --max-time 10 --cacert "$CA_FILE" --resolve "$host:$p:127.0.0.1" \
        -w '\n%{http_code} %{redirect_url}' "$@" "$url" | awk '
        { lines[NR] = $0 } END { split(lines[NR], t, " "); body = ""
          for (i = 1; i < NR; i++) body = body lines[i]
          print t[1] " " (t[2] != "" ? t[2] : body) }'
}

echo "== $scenario: $playbook"

# nginx: installed by the package manager, running, enabled.
if command -v dpkg-query >/dev/null; then
    expect "nginx installed (dpkg)" "install ok installed" "$(dpkg-query -W -f '${Status}' nginx 2>&1)"
else
    check "nginx installed (rpm)" rpm -q nginx
fi
expect "nginx active" active "$(systemctl is-active nginx)"
expect "nginx enabled" enabled "$(systemctl is-enabled nginx)"

# The test backends, then a reload so nginx listens on them.
conf=/etc/nginx/conf.d/portico-e2e-backends.conf
if ! cmp -s "$here/backends.conf" "$conf"; then
    cp "$here/backends.conf" "$conf" && nginx -t -q && systemctl reload nginx && sleep 0.3
fi

# Firewall: the playbook's ports and SSH allowed in whichever one is active.
fw=${EXPECT_FIREWALL:-}
if [ -z "$fw" ]; then
    if command -v ufw >/dev/null && ufw status 2>/dev/null | grep -q "Status: active"; then fw=ufw
    elif command -v firewall-cmd >/dev/null && [ "$(firewall-cmd --state 2>/dev/null)" = running ]; then fw=firewalld
    elif command -v iptables >/dev/null && iptables -S INPUT 2>/dev/null | grep -qv '^-P INPUT ACCEPT'; then fw=iptables
    else fw=unknown; fi
fi
case $fw in
ufw)
    status=$(ufw status)
    for p in 22 $fw_ports; do
        if echo "$status" | grep -Eq "^($p/tcp|$p|OpenSSH)( \(v6\))? +ALLOW"; then pass "ufw allows $p"
        else fail "ufw allows $p: $status"; fi
    done ;;
firewalld)
    for scope in "" --permanent; do
        services=" $(firewall-cmd $scope --list-services) "
        ports=" $(firewall-cmd $scope --list-ports) "
        for p in 22 $fw_ports; do
            case $p in 22) s=ssh ;; 80) s=http ;; 443) s=https ;; *) s=none ;; esac
            case "$services$ports" in
            *" $s "* | *" $p/tcp "*) pass "firewalld ${scope:-runtime} allows $p" ;;
            *) fail "firewalld ${scope:-runtime} allows $p: services:$services ports:$ports" ;;
            esac
        done
    done ;;
iptables)
    rules=$(iptables -S INPUT)
    for p in $fw_ports; do
        expect_in "iptables accepts $p" "--dport $p -j ACCEPT" "$rules"
    done
    if echo "$rules" | grep -q -- "-P INPUT ACCEPT" || echo "$rules" | grep -q -- "--dport 22 -j ACCEPT"; then
        pass "iptables still accepts SSH"
    else fail "iptables still accepts SSH: $rules"; fi ;;
none) pass "no firewall expected (EXPECT_FIREWALL=none)" ;;
*) fail "no active firewall found (set EXPECT_FIREWALL=none if that is intended)" ;;
esac

# The served certificate: verifies against CA_FILE for every name.
for n in $names; do
    v=$(openssl s_client -connect "127.0.0.1:$port" -servername "$n" -CAfile "$CA_FILE" \
        -verify_hostname "$n" </dev/null 2>/dev/null | grep "Verify return code")
    expect_in "certificate for $n verifies against $(basename "$CA_FILE")" "0 (ok)" "$v"
done
served=$(openssl s_client -connect "127.0.0.1:$port" -servername "$first" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>&1)
expect "the served certificate is $crt" "$(openssl x509 -in "$crt" -noout -fingerprint -sha256 2>&1)" "$served"

# Key files 0600, their directories 0700, owned by root.
expect "$key mode" "600 root" "$(stat -c '%a %U' "$key" 2>&1)"
expect "$(dirname "$key") mode" "700 root" "$(stat -c '%a %U' "$(dirname "$key")" 2>&1)"
for d in /var/lib/portico/acme /var/lib/portico/ca; do
    [ -d "$d" ] || continue
    expect "$d mode" "700 root" "$(stat -c '%a %U' "$d")"
    while IFS= read -r f; do
        expect "$f mode" 600 "$(stat -c '%a' "$f")"
    done < <(find "$d" -type f \( -name '*.key' -o -name 'account.json' \))
done

# Plain HTTP: redirected to the same URL over HTTPS.
expect "http://$first/x?y=1 redirects" "$redirect $origin/x?y=1" "$(get "http://$first/x?y=1")"

# Strangers get nothing: a TLS handshake without SNI or with a name no site
# serves is refused, a request for an unknown name never reaches a backend.
curl -s -o /dev/null --max-time 5 -k "https://127.0.0.1:$port/"
expect "no SNI on $port: handshake refused (curl exit 35)" 35 "$?"
curl -s -o /dev/null --max-time 5 -k --resolve "stranger.test:$port:127.0.0.1" "https://stranger.test:$port/"
expect "unknown SNI on $port: handshake refused (curl exit 35)" 35 "$?"
r=$(curl -s --max-time 5 -H "Host: stranger.test" http://127.0.0.1/ 2>&1)
case $r in *backend=*) fail "an unknown name on port 80 reached a backend: $r" ;; *) pass "an unknown name on port 80 reaches no backend" ;; esac

# The backends, with the right paths and headers, per scenario.
case $scenario in
letsencrypt)
    r=$(get "https://example.com/")
    expect_in "/ reaches :3000" "200 backend=3000 uri=/ host=example.com realip=127.0.0.1 proto=https" "$r"
    r=$(get "https://www.example.com/newservice/foo?q=1")
    expect_in "/newservice/foo?q=1 reaches :3001 as /foo?q=1" "200 backend=3001 uri=/foo?q=1 host=www.example.com" "$r"
    h=$(curl -s -o /dev/null -D - --cacert "$CA_FILE" --resolve example.com:443:127.0.0.1 https://example.com/)
    expect_in "HSTS sent" "strict-transport-security: max-age=31536000" "$(echo "$h" | tr '[:upper:]' '[:lower:]')"
    r=$(get "https://example.com/" -H "X-SSL-Client-Verify: SUCCESS" -H "X-Auth-Request-User: mallory")
    expect_in "forged identity headers are dropped" "verify= dn= user=" "$r" ;;
self-signed)
    r=$(get "https://app.internal/some/path?q=1")
    expect_in "/some/path reaches :8080" "200 backend=8080 uri=/some/path?q=1 host=app.internal realip=127.0.0.1 proto=https" "$r" ;;
oauth2)
    r=$(get "https://grafana.example.com/d/abc?x=1")
    expect "no session: sign-in redirect" "302 https://grafana.example.com/oauth2/start?rd=https://grafana.example.com/d/abc?x=1" "$r"
    r=$(get "https://grafana.example.com/d/abc" -H "Cookie: session=ok")
    expect_in "a session reaches grafana (:3000) with the user" "200 backend=3000 uri=/d/abc host=grafana.example.com" "$r"
    expect_in "the user header is passed on" "user=alice" "$r"
    r=$(get "https://grafana.example.com/" -H "X-Auth-Request-User: mallory")
    expect "a forged user header without a session is refused" "302" "${r%% *}"
    r=$(get "https://kibana.example.com/app" -H "Cookie: session=ok")
    expect_in "a session reaches kibana (:5601)" "200 backend=5601 uri=/app host=kibana.example.com" "$r"
    r=$(get "https://kibana.example.com/api/status")
    expect_in "kibana /api/status is open without a session" "200 backend=5601 uri=/api/status" "$r"
    expect "the auth endpoint is internal" "404" "$(get "https://grafana.example.com/oauth2/auth" | cut -d' ' -f1)" ;;
mtls)
    base="https://api.example.com:8443"
    r=$(get "$base/")
    expect_in "/ without a certificate reaches :4000, unverified, Host with the port" "200 backend=4000 uri=/ host=api.example.com:8443 realip=127.0.0.1 proto=https" "$r"
    expect_in "... and says so" "verify=NONE" "$r"
    expect "/exercise/ without a certificate" "403" "$(get "$base/exercise/" | cut -d' ' -f1)"
    dir=$(mktemp -d)
    for cn in e2e-alice e2e-mallory; do
        check "issue a client certificate for $cn" "$PORTICO" ca issue clients --cn "$cn" --out "$dir"
    done
    r=$(get "$base/exercise/run" --cert "$dir/e2e-alice.crt" --key "$dir/e2e-alice.key")
    expect_in "/exercise/ with a certificate" "200 backend=4000 uri=/exercise/run" "$r"
    expect_in "... verified, with its DN" "verify=SUCCESS dn=CN=e2e-alice" "$r"
    serial=$(openssl x509 -in "$dir/e2e-mallory.crt" -noout -serial | cut -d= -f2)
    expect "mallory's certificate works before revocation" "200" "$(get "$base/exercise/" --cert "$dir/e2e-mallory.crt" --key "$dir/e2e-mallory.key" | cut -d' ' -f1)"
    check "revoke mallory ($serial)" "$PORTICO" ca revoke clients "$serial"
    r=$(get "$base/exercise/" --cert "$dir/e2e-mallory.crt" --key "$dir/e2e-mallory.key")
    expect "a revoked certificate is refused" "400" "${r%% *}"
    expect "alice still gets in" "200" "$(get "$base/exercise/" --cert "$dir/e2e-alice.crt" --key "$dir/e2e-alice.key" | cut -d' ' -f1)"
    rm -rf "$dir" ;;
esac

# testssl.sh: protocols, ciphers, forward secrecy, preference, vulnerabilities.
json=$(mktemp -u /tmp/testssl.XXXXXX.json)
"$TESTSSL" --quiet --color 0 --warnings off -p -s -f -P -U --ip 127.0.0.1 \
    --jsonfile "$json" "$first:$port" >"$out" 2>&1
if [ ! -s "$json" ]; then
    fail "testssl.sh wrote no report"; tail -20 "$out" | sed 's/^/       /'
else
    high=$(grep -E '"severity" *: *"(HIGH|CRITICAL)"' -B3 "$json" | grep '"id"' | tr -d ' ",' | sed 's/id://' | tr '\n' ' ')
    expect "testssl.sh: nothing HIGH or CRITICAL" "" "$high"
fi
rm -f "$json"

# A second apply changes nothing.
report=$("$PORTICO" apply --json "$playbook" 2>"$out")
changed=$(echo "$report" | grep -o '"changed": *[0-9]*' | head -1 | grep -o '[0-9]*$')
expect "a second apply changes nothing" 0 "${changed:-no report: $(tail -3 "$out")}"

# Let's Encrypt: the renewal daemon runs, and a forced renewal reloads nginx once.
if [ "$scenario" = letsencrypt ]; then
    expect "portico.service active" active "$(systemctl is-active portico)"
    expect "portico.service enabled" enabled "$(systemctl is-enabled portico)"
    # nginx's master says each SIGHUP in its log at notice level (distros
    # log errors only); portico signals it through systemd without a reload
    # job, so systemd's journal does not count them. A main-level include
    # directory gets one more error_log, activated by one reload first.
    reload_log=/var/log/nginx/e2e-reloads.log
    for dir in /etc/nginx/modules-enabled /usr/share/nginx/modules; do
        if grep -q "include $dir/" /etc/nginx/nginx.conf; then
            echo "error_log $reload_log notice;" > "$dir/zz-e2e-reloads.conf"
            systemctl reload nginx
            for _ in $(seq 50); do [ -e "$reload_log" ] && break; sleep 0.1; done
            sleep 0.3
            break
        fi
    done
    reloads() { grep -c "(SIGHUP) received" "$reload_log" 2>/dev/null || true; }
    before_fp=$served
    before=$(reloads)
    check "portico renew --force" "$PORTICO" renew --force "$playbook"
    expect "nginx reloaded exactly once" $((before + 1)) "$(reloads)"
    after_fp=$(openssl s_client -connect "127.0.0.1:$port" -servername "$first" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 2>&1)
    if [ "$after_fp" != "$before_fp" ]; then pass "the renewed certificate is served"; else fail "the renewed certificate is served: still $before_fp"; fi
fi

echo "== $scenario: $failures failed"
[ "$failures" -eq 0 ]
