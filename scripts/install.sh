#!/usr/bin/env bash
# install.sh install|uninstall BUILT ROOT [PHASE...]: what `make install` and `make uninstall` do.
# BUILT holds the built stockade and stockade-launcher; ROOT is $(DESTDIR)$(PREFIX).
# Completions and man pages come from the built binary's own help, so they never disagree with it.
set -euo pipefail
action=$1 built=$2 root=$3
shift 3
phases=("$@")

bin=$root/bin
phase_dir=$root/lib/stockade/lifecycle
bash_completion=$root/share/bash-completion/completions/stockade
zsh_completion=$root/share/zsh/site-functions/_stockade
fish_completion=$root/share/fish/vendor_completions.d/stockade.fish
man_dir=$root/share/man/man1

case $action in
install)
    for program in stockade stockade-launcher; do
        [[ -x $built/$program ]] || { echo "install.sh: $built/$program is missing: build it first" >&2; exit 1; }
    done
    install -d "$bin" "$phase_dir" "$(dirname "$bash_completion")" "$(dirname "$zsh_completion")" \
        "$(dirname "$fish_completion")" "$man_dir"
    install -m 0755 "$built/stockade" "$built/stockade-launcher" "$bin/"
    # Relative, so a DESTDIR-staged tree still points at its own stockade.
    for phase in "${phases[@]}"; do
        ln -sfn ../../../bin/stockade "$phase_dir/$phase"
    done
    "$built/stockade" --generate-completion-script bash >"$bash_completion"
    "$built/stockade" --generate-completion-script zsh >"$zsh_completion"
    "$built/stockade" --generate-completion-script fish >"$fish_completion"
    chmod 0644 "$bash_completion" "$zsh_completion" "$fish_completion"
    release=$("$built/stockade" --version | sed -n "1s/^stockade //p")
    "$built/stockade" --experimental-dump-help | python3 "$(dirname "$0")/manpage.py" "$man_dir" "$release"
    chmod 0644 "$man_dir"/stockade*.1
    ;;
uninstall)
    rm -f "$bin/stockade" "$bin/stockade-launcher" "$bash_completion" "$zsh_completion" "$fish_completion" \
        "$man_dir"/stockade.1 "$man_dir"/stockade-*.1
    for phase in "${phases[@]}"; do
        rm -f "$phase_dir/$phase"
    done
    rmdir --ignore-fail-on-non-empty "$phase_dir" "$root/lib/stockade" 2>/dev/null || true
    ;;
*)
    echo "usage: install.sh install|uninstall BUILT ROOT [PHASE...]" >&2
    exit 64
    ;;
esac
