#!/bin/sh
# The official image builds Redis with protected mode off (it listens for other containers) and
# runs the server as the redis user; Debian's package keeps protected mode on.
set -e
if [ "$1" = redis-server ]; then
  chown -R redis:redis /data
  exec setpriv --reuid=redis --regid=redis --init-groups "$@" --protected-mode no
fi
exec "$@"
