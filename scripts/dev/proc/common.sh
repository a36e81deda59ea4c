# Sourced by the commands of the process graph (scripts/dev/process-compose.yaml): the
# launcher's settings and helpers, the build profile chosen by the last ./dev up, and a
# marker line in the process's log (process-compose appends its output to .run/logs/<name>.log).
set -euo pipefail
# shellcheck source=scripts/dev/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
if [[ -s $RUN/services.profile ]]; then PROFILE=$(<"$RUN/services.profile"); fi
printf '\n===== %s ./dev starts %s =====\n' "$(date '+%F %T')" "${PC_PROC_NAME:-$(basename "$0" .sh)}"
