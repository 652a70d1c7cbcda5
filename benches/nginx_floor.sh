#!/bin/bash
# nginx_floor.sh [N...] -- measure nginx itself on the configuration portico
# renders for N TLS sites: the floor portico cannot go under.
#
# For each N (default "1000 10000") and for an anchor of $ANCHOR sites
# (default 100, measured in the same run) it renders N self-signed sites
# proxying to http://127.0.0.1:3000 into a copy of the debian12 fixture tree
# (`portico apply --replace --root`, nothing on the host is touched), then runs
# the stock nginx on it, with the fixture's /etc/nginx/nginx.conf unchanged, in
# private mount + network + pid namespaces:
#   /etc/nginx          <- $tree/etc/nginx          (bind)
#   /etc/ssl/portico    <- $tree/etc/ssl/portico    (bind; if /etc/ssl/portico
#   /var/lib/portico    <- $tree/var/lib/portico     does not exist, /etc/ssl is
#                                                    masked by a tmpfs holding
#                                                    links to the host entries)
#   /run, /var/log/nginx, /var/lib/nginx <- fresh tmpfs (pid file, logs, temp)
# The network namespace has only `lo`, so the 80/443 listeners are not
# reachable from anywhere else; the probe is
#   curl -k --resolve sN.scale.test:443:127.0.0.1 https://sN.scale.test/
# (any HTTP status counts as "answering"; the upstream is down, so 502).
# The pid namespace means every nginx started here dies with the script.
#
# Figures per N:
#   nginx -t      wall time of `nginx -t`
#   start         `nginx` launched -> the probe answers
#   master RSS    VmRSS of the master once serving; total = master + workers
#                 (RSS counts shared copy-on-write pages once per process;
#                 PSS, from smaps_rollup, shares them out)
#   reload        signal sent -> every old worker gone and a new worker
#                 answering; measured twice: `nginx -s reload` (which parses
#                 the whole configuration itself before it signals) and a
#                 bare `kill -HUP <master>`
#   config        bytes, files, server blocks of what portico rendered
#                 (conf.d/portico.conf + the live generation)
#
# Environment: PORTICO_BIN (default target/release/portico of this repo; it is
# copied first), NGINX (default: nginx from PATH or /usr/sbin/nginx),
# ANCHOR (default 100), WAIT_MAX seconds per wait (default 900), KEEP=1 keeps
# the temp dirs. Needs root (namespaces), unshare, nginx, curl, ip, ps.
set -u -o pipefail

self=$(readlink -f "$0")

die() { echo "nginx_floor: $*" >&2; exit 1; }
now() { date +%s%N; }

# ---------------------------------------------------------------- inner part
# Runs as PID 1 of the new pid namespace, inside private mount/net namespaces.
# usage: nginx_floor.sh __inner TREE WORK NGINX PROBE_HOST WAIT_MAX
inner() {
    local tree=$1 w=$2 ngx=$3 host=$4 wait_max=$5
    local res=$w/result err=$w/nginx.err
    : >"$res"
    put() { echo "$1=$2" >>"$res"; }
    fail() { echo "nginx_floor: $*" >&2; [ -s "$err" ] && sed 's/^/  nginx: /' "$err" | tail -20 >&2; exit 1; }

    mount --make-rprivate / 2>/dev/null
    # bind SRC over TARGET; if TARGET is missing, mask its parent with a tmpfs
    # that links back to the parent's original entries, then create TARGET there.
    graft() {
        local src=$1 t=$2 p keep e
        if [ ! -d "$t" ]; then
            p=$(dirname "$t")
            [ -d "$p" ] || fail "cannot graft $t: $p does not exist"
            keep=$w/keep$(echo "$p" | tr / _)
            mkdir -p "$keep" || fail "mkdir $keep"
            mount --bind "$p" "$keep" || fail "bind $p"
            mount -t tmpfs -o mode=0755 tmpfs "$p" || fail "tmpfs on $p"
            for e in "$keep"/* "$keep"/.[!.]*; do
                [ -e "$e" ] || [ -L "$e" ] || continue
                ln -s "$e" "$p/${e##*/}"
            done
            mkdir "$t" || fail "mkdir $t"
        fi
        mount --bind "$src" "$t" || fail "bind $src on $t"
    }
    # fresh, empty pid/log/temp directories first (a missing one is grafted
    # from an empty dir, which may mask its parent), then the rendered tree
    local m
    for m in /run /var/log/nginx /var/lib/nginx; do
        if [ ! -d "$m" ]; then
            mkdir -p "$w/empty" && graft "$w/empty" "$m"
        fi
        mount -t tmpfs -o mode=0755 tmpfs "$m" || fail "tmpfs on $m"
    done
    graft "$tree/etc/nginx" /etc/nginx
    graft "$tree/etc/ssl/portico" /etc/ssl/portico
    mkdir -p "$tree/var/lib/portico/acme-challenge"
    graft "$tree/var/lib/portico" /var/lib/portico
    ip link set lo up || fail "ip link set lo up"

    local pidfile
    pidfile=$(sed -n 's/^[[:space:]]*pid[[:space:]]\+\([^;]*\);.*/\1/p' /etc/nginx/nginx.conf | head -1)
    pidfile=${pidfile:-/run/nginx.pid}

    probe() {  # prints the HTTP status, 000 if nothing answered
        curl -s -k -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 5 \
            --resolve "$host:443:127.0.0.1" "https://$host/" 2>/dev/null
    }
    alive() {  # pid exists and is not a zombie
        local s
        s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
        [ -n "$s" ] && [ "$s" != Z ]
    }
    workers() { ps --ppid "$1" -o pid= 2>/dev/null | tr -d ' '; }
    kb() { awk -v k="$2" '$1 == k":" {print $2; exit}' "$1" 2>/dev/null; }
    deadline() { echo $(( $(now) + wait_max * 1000000000 )); }

    master=""   # global: the EXIT trap needs it
    local t0 t1 dl
    stop() {
        [ -n "$master" ] && alive "$master" && kill -QUIT "$master" 2>/dev/null
        local i
        for i in $(seq 1 300); do { [ -n "$master" ] && alive "$master"; } || break; sleep 0.1; done
        [ -n "$master" ] && alive "$master" && kill -KILL "$master" 2>/dev/null
    }
    trap stop EXIT

    # -- nginx -t
    t0=$(now); "$ngx" -t >"$err" 2>&1 || fail "nginx -t failed"; t1=$(now)
    put test_ns $((t1 - t0))
    put test_warnings "$(grep -c '\[warn\]' "$err")"
    put test_warning "$(sed -n 's/.*\[warn\] [0-9#]*: //p' "$err" | sort | uniq -c | sort -rn | head -1 | sed 's/^ *//')"

    # -- start, serving
    t0=$(now); "$ngx" >"$err" 2>&1 || fail "nginx did not start"
    master=$(cat "$pidfile" 2>/dev/null) || fail "no pid file $pidfile"
    dl=$(deadline)
    until [ "$(probe)" != 000 ]; do
        [ "$(now)" -lt "$dl" ] || fail "no answer from $host within ${wait_max}s"
        alive "$master" || fail "nginx master died"
        sleep 0.01
    done
    t1=$(now); put start_ns $((t1 - t0)); put probe_status "$(probe)"
    sleep 1  # let the workers settle (all started, first requests done)

    local p rss pss n
    memory() {  # $1 = prefix
        local rt=0 pt=0 wc=0
        rss=$(kb /proc/"$master"/status VmRSS); pss=$(kb /proc/"$master"/smaps_rollup Pss)
        put "$1master_rss_kb" "${rss:-0}"; put "$1master_pss_kb" "${pss:-0}"
        put "$1master_hwm_kb" "$(kb /proc/"$master"/status VmHWM)"
        rt=${rss:-0}; pt=${pss:-0}
        for p in $(workers "$master"); do
            rss=$(kb /proc/"$p"/status VmRSS); pss=$(kb /proc/"$p"/smaps_rollup Pss)
            rt=$((rt + ${rss:-0})); pt=$((pt + ${pss:-0})); wc=$((wc + 1))
        done
        put "$1total_rss_kb" "$rt"; put "$1total_pss_kb" "$pt"; put "$1workers" "$wc"
    }
    memory ""

    # -- reload: $1 = how ("-s" or "hup")
    reload() {
        local old new ok p
        old=$(workers "$master")
        [ -n "$old" ] || fail "no workers before reload"
        n=$(echo "$old" | wc -l)
        t0=$(now)
        if [ "$1" = -s ]; then
            "$ngx" -s reload >"$err" 2>&1 || fail "nginx -s reload failed"
            put reload_s_signal_ns $(( $(now) - t0 ))
        else
            kill -HUP "$master" || fail "kill -HUP $master"
        fi
        dl=$(deadline)
        while :; do
            ok=1
            for p in $old; do alive "$p" && { ok=0; break; }; done
            if [ $ok = 1 ]; then
                new=$(workers "$master")
                [ "$(echo "$new" | grep -c .)" -ge "$n" ] && [ "$(probe)" != 000 ] && break
            fi
            [ "$(now)" -lt "$dl" ] || fail "reload ($1) not finished within ${wait_max}s"
            alive "$master" || fail "nginx master died during reload"
            sleep 0.01
        done
        t1=$(now)
        put "reload_${1#-}_ns" $((t1 - t0))
        sleep 1
    }
    reload -s
    memory "after_reload1_"
    reload hup
    memory "after_reload_"

    stop; master=""
    trap - EXIT
}

if [ "${1:-}" = __inner ]; then
    shift; inner "$@"; exit $?
fi

# ---------------------------------------------------------------- outer part
[ "$(id -u)" = 0 ] || die "must run as root (it creates mount/network/pid namespaces)"
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || die "nginx not found (set NGINX=/path/to/nginx)"
for c in unshare curl ip ps awk; do
    command -v "$c" >/dev/null || die "$c not found"
done
repo=$(cd "$(dirname "$self")/.." && pwd)
src_bin=${PORTICO_BIN:-$repo/target/release/portico}
[ -x "$src_bin" ] || die "portico binary not found at $src_bin (set PORTICO_BIN)"
fixture=$repo/tests/fixtures/trees/debian12
[ -f "$fixture/etc/nginx/nginx.conf" ] || die "fixture tree debian12 not found"
ANCHOR=${ANCHOR:-100}
WAIT_MAX=${WAIT_MAX:-900}
ns=("$@"); [ ${#ns[@]} -gt 0 ] || ns=(1000 10000)
for n in "$ANCHOR" "${ns[@]}"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "not a site count: $n"
done

top=$(mktemp -d "${TMPDIR:-/tmp}/nginx-floor.XXXXXX") || die "mktemp"
chmod 0755 "$top"
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $top" >&2; else rm -rf "$top"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
BIN=$top/portico
cp "$src_bin" "$BIN" || die "cannot copy $src_bin"
chmod 0755 "$BIN" || die "cannot chmod $BIN"

declare -A R   # R[n,key]=value

measure() {  # $1 = N
    local n=$1 d=$top/tree-$1 w=$top/work-$1 pb=$top/playbook-$1.toml t0 t1 i k v
    mkdir -p "$w"; chmod 0755 "$w"
    cp -a "$fixture/." "$d/" || die "cannot copy the fixture"
    {
        echo 'version = 1'; echo '[firewall]'; echo 'backend = "none"'
        for i in $(seq 1 "$n"); do
            printf '[[certificate]]\nname = "c%d"\nsource = "self-signed"\nnames = ["s%d.scale.test"]\n' "$i" "$i"
            printf '[[site]]\nserver_names = ["s%d.scale.test"]\ncertificate = "c%d"\n[[site.location]]\npath = "/"\nproxy = "http://127.0.0.1:3000"\n' "$i" "$i"
        done
    } >"$pb"
    t0=$(now)
    "$BIN" apply --replace --root "$d" "$pb" >"$w/apply.log" 2>&1 \
        || { tail -20 "$w/apply.log" >&2; die "portico apply failed for N=$n"; }
    t1=$(now); R[$n,render_ns]=$((t1 - t0))

    # size of what portico rendered (what nginx reads besides the distro files)
    local files=("$d/etc/nginx/conf.d/portico.conf")
    while IFS= read -r -d '' k; do files+=("$k"); done \
        < <(find -L "$d/etc/nginx/portico/live" -type f -print0)
    R[$n,files]=${#files[@]}
    R[$n,bytes]=$(cat "${files[@]}" | wc -c)
    R[$n,servers]=$(cat "${files[@]}" | grep -cE '^[[:space:]]*server[[:space:]]*\{')
    R[$n,tls]=$(cat "${files[@]}" | grep -cE '^[[:space:]]*ssl_certificate[[:space:]]')
    R[$n,certs]=$(cat "${files[@]}" | awk '$1 == "ssl_certificate" {print $2}' | sort -u | wc -l)
    R[$n,upstreams]=$(cat "${files[@]}" | grep -cE '^[[:space:]]*upstream[[:space:]]')

    unshare -m -n -p -f --mount-proc --propagation private \
        bash "$self" __inner "$d" "$w" "$NGINX" "s$n.scale.test" "$WAIT_MAX" \
        || die "measurement failed for N=$n"
    while IFS='=' read -r k v; do R[$n,$k]=$v; done <"$w/result"
    rm -rf "$d" "$w" "$pb"
}

s() { awk -v x="$1" 'BEGIN { printf "%.2f", x / 1e9 }'; }        # ns -> s
ms() { awk -v x="$1" 'BEGIN { printf "%.0f", x / 1e6 }'; }       # ns -> ms
mb() { awk -v x="$1" 'BEGIN { printf "%.1f", x / 1024 }'; }      # KB -> MB
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }'; }

report() {  # $1 = N
    local n=$1
    printf 'N=%-6s config %s bytes in %s files: %s server blocks (%s TLS, %s certificates), %s upstreams; portico apply %ss\n' \
        "$n" "${R[$n,bytes]}" "${R[$n,files]}" "${R[$n,servers]}" "${R[$n,tls]}" "${R[$n,certs]}" "${R[$n,upstreams]}" "$(s "${R[$n,render_ns]}")"
    printf 'N=%-6s nginx -t %ss | start->serving %ss (probe %s) | master RSS %s MB, master+%s workers RSS %s MB (PSS %s MB)\n' \
        "$n" "$(s "${R[$n,test_ns]}")" "$(s "${R[$n,start_ns]}")" "${R[$n,probe_status]}" \
        "$(mb "${R[$n,master_rss_kb]}")" "${R[$n,workers]}" "$(mb "${R[$n,total_rss_kb]}")" "$(mb "${R[$n,total_pss_kb]}")"
    [ "${R[$n,test_warnings]:-0}" = 0 ] ||
        printf 'N=%-6s nginx -t warnings: %s, most frequent: %s\n' "$n" "${R[$n,test_warnings]}" "${R[$n,test_warning]}"
    printf 'N=%-6s reload: nginx -s reload %ss (of which the signaller itself %ss), then kill -HUP %ss\n' \
        "$n" "$(s "${R[$n,reload_s_ns]}")" "$(s "${R[$n,reload_s_signal_ns]}")" "$(s "${R[$n,reload_hup_ns]}")"
    printf 'N=%-6s after 1 reload: master RSS %s MB, total PSS %s MB | after 2: master RSS %s MB, total RSS %s MB (PSS %s MB), master peak RSS %s MB\n' \
        "$n" "$(mb "${R[$n,after_reload1_master_rss_kb]}")" "$(mb "${R[$n,after_reload1_total_pss_kb]}")" \
        "$(mb "${R[$n,after_reload_master_rss_kb]}")" "$(mb "${R[$n,after_reload_total_rss_kb]}")" "$(mb "${R[$n,after_reload_total_pss_kb]}")" \
        "$(mb "${R[$n,after_reload_master_hwm_kb]}")"
}

echo "nginx_floor: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $(openssl version 2>/dev/null | cut -d' ' -f1-2), $(nproc) CPUs, worker_processes from the fixture nginx.conf"
a=$ANCHOR
mapfile -t all < <(printf '%s\n' "$a" "${ns[@]}" | awk '!seen[$0]++')   # anchor first, no repeats
mapfile -t others < <(printf '%s\n' "${ns[@]}" | awk -v a="$a" '$0 != a && !seen[$0]++')
for n in "${all[@]}"; do measure "$n"; report "$n"; done

echo
echo "| sites | server blocks | config KB | nginx -t s | start s | master RSS MB | total RSS MB (PSS) | reload -s s | reload HUP s | master RSS after 2 reloads MB |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in "${all[@]}"; do
    printf '| %s%s | %s | %s | %s | %s | %s | %s (%s) | %s | %s | %s |\n' "$n" "$([ "$n" = "$a" ] && echo ' (anchor)')" \
        "${R[$n,servers]}" "$((R[$n,bytes] / 1024))" "$(s "${R[$n,test_ns]}")" "$(s "${R[$n,start_ns]}")" \
        "$(mb "${R[$n,master_rss_kb]}")" "$(mb "${R[$n,total_rss_kb]}")" "$(mb "${R[$n,total_pss_kb]}")" \
        "$(s "${R[$n,reload_s_ns]}")" "$(s "${R[$n,reload_hup_ns]}")" "$(mb "${R[$n,after_reload_master_rss_kb]}")"
done
for n in "${others[@]}"; do
    printf '| %s / %s | %s | %s | %s | %s | %s | %s (%s) | %s | %s | %s |\n' "$n" "$a" \
        "$(ratio "${R[$n,servers]}" "${R[$a,servers]}")" "$(ratio "${R[$n,bytes]}" "${R[$a,bytes]}")" \
        "$(ratio "${R[$n,test_ns]}" "${R[$a,test_ns]}")" "$(ratio "${R[$n,start_ns]}" "${R[$a,start_ns]}")" \
        "$(ratio "${R[$n,master_rss_kb]}" "${R[$a,master_rss_kb]}")" \
        "$(ratio "${R[$n,total_rss_kb]}" "${R[$a,total_rss_kb]}")" "$(ratio "${R[$n,total_pss_kb]}" "${R[$a,total_pss_kb]}")" \
        "$(ratio "${R[$n,reload_s_ns]}" "${R[$a,reload_s_ns]}")" "$(ratio "${R[$n,reload_hup_ns]}" "${R[$a,reload_hup_ns]}")" \
        "$(ratio "${R[$n,after_reload_master_rss_kb]}" "${R[$a,after_reload_master_rss_kb]}")"
done
header=0
for n in "${others[@]}"; do
    [ "$n" -gt "$a" ] || continue
    [ $header = 1 ] || { echo; echo "Marginal cost per site beyond the anchor (a site = one :443 server with its own certificate + one :80 server + one upstream):"; header=1; }
    awk -v n="$n" -v a="$a" -v t="$(( R[$n,test_ns] - R[$a,test_ns] ))" -v h="$(( R[$n,reload_hup_ns] - R[$a,reload_hup_ns] ))" \
        -v m="$(( R[$n,master_rss_kb] - R[$a,master_rss_kb] ))" -v p="$(( R[$n,total_pss_kb] - R[$a,total_pss_kb] ))" \
        -v b="$(( R[$n,bytes] - R[$a,bytes] ))" 'BEGIN { d = n - a;
        printf "- N=%d: nginx -t %.2f ms/site, reload (HUP) %.2f ms/site, master RSS %.1f KB/site, total PSS %.1f KB/site, config %.0f bytes/site\n",
            n, t / d / 1e6, h / d / 1e6, m / d, p / d, b / d }'
done
