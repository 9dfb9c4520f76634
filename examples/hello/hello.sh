#!/bin/sh
# Runs inside the sandbox and reports what it can and cannot do.
echo "hello from $(id -un) (uid $(id -u), gid $(id -g)) on $(uname -n), pid $$"
grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr '\t' ' '
echo "processes visible: $(ls /proc | grep -cE '^[0-9]+$')"
echo "network interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
if [ -e /etc/shadow ]; then echo "/etc/shadow: visible"; else echo "/etc/shadow: absent"; fi
if touch /app/intruder 2>/dev/null; then echo "/app: writable"; else echo "/app: read-only"; fi
echo "wrote $(echo built > /out/result.txt && wc -c < /out/result.txt) bytes to /out"
