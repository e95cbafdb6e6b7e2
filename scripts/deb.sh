#!/usr/bin/env bash
# Builds the Debian package (cargo-deb): the three programs, their man pages
# and shell completions (generated from the programs' own command-line
# definitions), the systemd units, the annotated configuration and the
# example files. Prints the .deb's path.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb >&2
cargo build --release --bins -q
out=target/pkg
rm -rf "$out"
mkdir -p "$out/man" "$out/completions/bash" "$out/completions/zsh" "$out/completions/fish"
for p in xdpvs xdpvsadm xdpvs-checker; do
    "target/release/$p" --print-man > "$out/man/$p.8"
    "target/release/$p" --print-completions bash > "$out/completions/bash/$p"
    "target/release/$p" --print-completions zsh > "$out/completions/zsh/_$p"
    "target/release/$p" --print-completions fish > "$out/completions/fish/$p.fish"
done
cargo deb -p xdpvs --no-build -o target/pkg/ 2>&1 | tail -1
