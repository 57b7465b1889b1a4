#!/usr/bin/env bash
# A real multi-shard gb_scale deployment on one machine: N PostgreSQL
# instances, each a shard of General Bots with its own SHARD_ID, port, socket
# directory and data directory under one base directory.
#
#   test/shards.sh start [N]     start N shards (default 3: USA, DEU, SGP) and
#                                print their connection info (as `env` does)
#   test/shards.sh stop          stop them (idempotent); a base directory that
#                                start made itself is removed
#   test/shards.sh env           print the connection info, eval-able:
#                                  eval "$(test/shards.sh env)"
#   test/shards.sh psql ID [...] psql on shard ID's database, as postgres
#
# The base directory is $GB_SHARDS_DIR, or for start a new mktemp directory
# (printed as GB_SHARDS_DIR=...; stop and env need it in the environment).
# Settings: PG_CONFIG (which PostgreSQL; Debian's 15 by default),
# GB_SHARDS_PORT (port of the first shard, the others follow; default a free
# one), GB_SHARDS_DB (database name, default gb), GB_SHARDS_CONF (more
# postgresql.conf lines for every shard, e.g. a benchmark's shared_buffers).
#
# Each shard: shared_preload_libraries = 'gb_scale', wal_level = logical (and
# replication slots and workers for tenant moves), SHARD_ID in the server's
# environment (not gb_scale.shard_id), a database with CREATE EXTENSION
# gb_scale, the same gb_scale.shard_config rows on every shard (connection
# strings point at each instance's socket directory and port; shard 1 is
# the primary of the directory), and General Bots-like tables gb.sessions and
# gb.messages whose rows carry the shard that holds them, isolated by tenant
# (gb_tenant_isolation_enable).  A role gb_app (LOGIN, no superuser) may read
# and write them, one tenant per transaction (gb_set_tenant).
#
# Runs as root (servers and clients then run as the postgres OS user) or as
# the postgres user.  The servers listen on their socket directory only.
set -euo pipefail

GB_PGVER=15
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$GB_PGVER/bin/pg_config}
[ -x "$PG_CONFIG" ] || { echo "error: PG_CONFIG=$PG_CONFIG is not executable" >&2; exit 1; }
BINDIR=$("$PG_CONFIG" --bindir)
DB=${GB_SHARDS_DB:-gb}

# The shards of DESIGN.md section 2, in the order they are started: the
# default three regions first, then the rest of its list, then more regions
# on the same pattern (one million tenants each, in shard id order).
#   id region datacenter min max
SHARD_TABLE=(
	"1 USA us-east-1 1 1000000"
	"4 DEU eu-central-1 3000001 4000000"
	"6 SGP ap-southeast-1 5000001 6000000"
	"2 USA us-west-2 1000001 2000000"
	"3 BRA sa-east-1 2000001 3000000"
	"5 GBR eu-west-2 4000001 5000000"
	"7 JPN ap-northeast-1 6000001 7000000"
	"8 AUS ap-southeast-2 7000001 8000000"
	"9 IND ap-south-1 8000001 9000000"
	"10 CAN ca-central-1 9000001 10000000"
	"11 FRA eu-west-3 10000001 11000000"
	"12 IRL eu-west-1 11000001 12000000"
)

source "$(dirname "${BASH_SOURCE[0]}")/nodes_lib.sh"

# psql on shard directory DIR's database, as the superuser postgres.
shard_psql() {
	local dir=$1
	shift
	as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$(cat "$dir/port")" -U postgres -d "$DB" "$@"
}

need_base() {
	[ -n "${GB_SHARDS_DIR:-}" ] || die "GB_SHARDS_DIR is not set (start prints it)"
	BASE=$GB_SHARDS_DIR
}

# Shard directories of BASE in start order (from the shards file).
shard_dirs() {
	local id
	[ -f "$BASE/shards" ] || return 0
	while read -r id _; do
		echo "$BASE/shard$id"
	done <"$BASE/shards"
}

cmd_env() {
	need_base
	[ -f "$BASE/shards" ] || die "no shards in $BASE"
	local id region dc min max dir ids=()
	echo "export GB_SHARDS_DIR='$BASE'"
	echo "export PGUSER=postgres"
	while read -r id region dc min max; do
		dir=$BASE/shard$id
		ids+=("$id")
		echo "# shard $id: $region $dc, tenants $min..$max"
		echo "export GB_SHARD_${id}_HOST='$dir' GB_SHARD_${id}_PORT=$(cat "$dir/port")"
		echo "export GB_SHARD_${id}_CONNSTR='$(cat "$dir/connstr")'"
	done <"$BASE/shards"
	echo "export GB_SHARDS='${ids[*]}'"
}

cmd_stop() {
	need_base
	# shellcheck disable=SC2046 # one word per directory
	nodes_stop .made_by_shards_sh shards $(shard_dirs)
}

# The SQL that every shard runs once its server is up: the extension, the
# shard directory (same rows everywhere) and the application's tables.
setup_sql() {
	local id region dc min max
	cat <<'SQL'
CREATE EXTENSION gb_scale;
SQL
	# The same rows on every shard, created_at included.
	echo "INSERT INTO gb_scale.shard_config (shard_id, region_code, datacenter, connection_string, is_primary, is_active, min_tenant_id, max_tenant_id, created_at) VALUES"
	local sep=''
	while read -r id region dc min max; do
		printf "%s(%s, '%s', '%s', '%s', %s, true, %s, %s, '%s')" "$sep" "$id" "$region" "$dc" \
			"$(sed "s/'/''/g" "$BASE/shard$id/connstr")" "$([ "$id" = 1 ] && echo true || echo false)" \
			"$min" "$max" "$CREATED_AT"
		sep=$',\n'
	done <"$BASE/shards"
	echo ';'
	cat <<'SQL'
CREATE ROLE gb_app LOGIN;
CREATE SCHEMA gb;
GRANT USAGE ON SCHEMA gb TO gb_app;
-- Every row carries the shard that holds it: part of the primary key, and
-- the partition key of the cross-shard tables (gb_global_table).
CREATE TABLE gb.sessions (
    shard_id    smallint        NOT NULL DEFAULT gb_current_shard(),
    id          bigint          NOT NULL DEFAULT gb_next_id(),
    tenant_id   bigint          NOT NULL,
    channel     gb_channel_type NOT NULL DEFAULT 0,
    user_ref    text            NOT NULL,
    created_at  timestamptz     NOT NULL DEFAULT now(),
    last_active timestamptz     NOT NULL DEFAULT now(),
    PRIMARY KEY (shard_id, id)
);
CREATE INDEX ON gb.sessions (tenant_id);
CREATE TABLE gb.messages (
    shard_id     smallint        NOT NULL DEFAULT gb_current_shard(),
    id           bigint          NOT NULL DEFAULT gb_next_id(),
    tenant_id    bigint          NOT NULL,
    session_id   bigint          NOT NULL,
    channel      gb_channel_type NOT NULL DEFAULT 0,
    role         gb_message_role NOT NULL,
    message_type gb_message_type NOT NULL DEFAULT 0,
    body         text            NOT NULL,
    created_at   timestamptz     NOT NULL DEFAULT now(),
    PRIMARY KEY (shard_id, id)
);
CREATE INDEX ON gb.messages (tenant_id, session_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA gb TO gb_app;
-- Each organization sees only its rows: the application names the tenant of
-- each transaction with gb_set_tenant().
SELECT gb_tenant_isolation_enable('gb.sessions'), gb_tenant_isolation_enable('gb.messages');
GRANT EXECUTE ON FUNCTION gb_set_tenant(bigint) TO gb_app;
SQL
}

# EXIT trap of start: a failed start leaves nothing running.
start_failed() {
	local status=$?
	if [ $status -ne 0 ]; then
		log "start failed; stopping the shards"
		cmd_stop
	fi
}

cmd_start() {
	local n=${1:-3} made=0 port id region dc min max dir i
	if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt ${#SHARD_TABLE[@]} ]; then
		die "number of shards: 1 to ${#SHARD_TABLE[@]}, not '$n'"
	fi
	nodes_new_base "${GB_SHARDS_DIR:-}" gb_shards .made_by_shards_sh
	made=$MADE
	export GB_SHARDS_DIR=$BASE
	# On any failure from here: stop what was started, remove what was made.
	trap start_failed EXIT

	port=${GB_SHARDS_PORT:-$(free_port "$n")}
	: >"$BASE/shards"
	for ((i = 0; i < n; i++)); do
		echo "${SHARD_TABLE[$i]}" >>"$BASE/shards"
	done
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$BASE/shards"
	log "starting $n shards under $BASE with $PG_CONFIG"
	i=0
	while read -r id region dc min max; do
		dir=$BASE/shard$id
		as_pg mkdir -m 700 "$dir"
		# shellcheck disable=SC2016 # expanded by that shell, as the postgres user
		as_pg sh -c 'echo "$1" >"$2/port" && echo "host=$2 port=$1 dbname=$3" >"$2/connstr"' \
			sh "$((port + i))" "$dir" "$DB"
		as_pg initdb -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; die "initdb of shard $id failed"; }
		# shellcheck disable=SC2016
		as_pg sh -c 'cat >>"$1"' sh "$dir/data/postgresql.conf" <<CONF
port = $((port + i))
listen_addresses = ''
unix_socket_directories = '$dir'
shared_preload_libraries = 'gb_scale'
max_connections = 40
# Tenant moves (gb_tenant_move) copy by logical replication: per move its
# slot and up to two table syncs on the source, an apply and two sync
# workers on the target; enough here for one move per pair of shards.
wal_level = logical
max_replication_slots = 16
max_wal_senders = 16
max_logical_replication_workers = 8
max_worker_processes = 16
timezone = 'UTC'
logging_collector = off
log_line_prefix = '%m [%p] shard $id: '
${GB_SHARDS_CONF:-}
CONF
		# General Bots sets SHARD_ID per instance: the server's environment
		# gives the shard id, nothing in its configuration does.
		as_pg env SHARD_ID="$id" pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
			{ cat "$dir/server.log" >&2; die "shard $id did not start"; }
		as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$((port + i))" -U postgres -d postgres \
			-c "CREATE DATABASE $DB" >/dev/null
		log "shard $id ($region $dc, tenants $min..$max): port $((port + i)), socket $dir, SHARD_ID=$id"
		i=$((i + 1))
	done <"$BASE/shards"
	CREATED_AT=$(date -u '+%F %T.%6N+00')
	for dir in $(shard_dirs); do
		setup_sql | shard_psql "$dir" >/dev/null
	done
	trap - EXIT
	[ $made -eq 1 ] && log "base directory $BASE (made here: stop removes it)"
	cmd_env
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) cmd_stop ;;
env) cmd_env ;;
psql)
	need_base
	[ -n "${2:-}" ] || die "usage: $0 psql SHARD_ID [psql arguments]"
	[ -f "$BASE/shard$2/port" ] || die "no shard $2 in $BASE"
	dir=$BASE/shard$2
	shift 2
	shard_psql "$dir" "$@"
	;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
