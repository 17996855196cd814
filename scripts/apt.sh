# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Sourced by the setup scripts. apt_install PKG... installs those of the
# packages that are not installed yet (no recommends), refreshing apt's
# lists first when they are more than 12 hours old ($CACHE/.apt-updated).
# The caller defines log(); CACHE defaults to $PTNETMAP_CACHE or
# ~/.cache/ptnetmap.

CACHE="${CACHE:-${PTNETMAP_CACHE:-$HOME/.cache/ptnetmap}}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing_packages() {
  local pkg status
  for pkg in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || printf '%s\n' "$pkg"
  done
}

apt_install() {
  local -a missing
  mapfile -t missing < <(missing_packages "$@")
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing ${missing[*]}"
  if [ ! -f "$CACHE/.apt-updated" ] || [ -n "$(find "$CACHE/.apt-updated" -mmin +720)" ]; then
    $SUDO apt-get update -qq
    mkdir -p "$CACHE" && touch "$CACHE/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
