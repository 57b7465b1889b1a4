# gb_scale: PGXS build.  `make PG_CONFIG=/path/to/pg_config` picks another server.

EXTENSION = gb_scale
MODULE_big = gb_scale
OBJS = \
	src/gb_scale.o \
	src/ids.o \
	src/id_codec.o \
	src/enum_catalog.o \
	src/enum_cache.o \
	src/enum_admin.o \
	src/partition_bounds.o \
	src/partition_ddl.o \
	src/partition_horizon.o \
	src/partition_maint.o \
	src/partition_api.o \
	src/partition_worker.o \
	src/routing.o \
	src/routing_map.o \
	src/routing_routes.o \
	src/routing_citus.o \
	src/shard_conn.o \
	src/shard_sync.o \
	src/shard_secret.o \
	src/tenant_move.o \
	src/tenant.o \
	src/tenant_guard.o \
	src/tenant_settings.o \
	src/shard_fdw.o \
	src/stat_tenants.o \
	src/sizing.o \
	src/tenant_limits.o \
	src/tenant_quotas.o \
	src/citus_glue.o
DATA = gb_scale--1.0.sql
PGFILEDESC = "gb_scale - snowflake IDs, enum domains, partitions and shard routing"

REGRESS = ids enums enum_hardening partitions partition_bounds partition_drain partition_archive partition_rename partition_horizon partition_guardrail shard_sync shard_sync_buckets shard_sync_settings shard_sync_tiers shard_fdw shard_secret routing routing_map routing_citus shard_routes tenant tenant_partitions tenant_cursors tenant_fkeys tenant_settings tenant_export_tiers partition_moves hostile_owner hostile_owner_plan stat_tenants tenant_limits tenant_quotas quota_hostile_owner sizing parallel privileges functions search_path
REGRESS_OPTS = --inputdir=. --load-extension=gb_scale
ISOLATION = enum_concurrency routing_cache tenant_settings_cache routing_assign routing_shared purge_fkey_race move_concurrency shard_routes_assign tenant_limits_xacts tenant_quotas_race
ISOLATION_OPTS = --load-extension=gb_scale

PG_CPPFLAGS = -Wall -Werror -I$(srcdir)/src -I$(libpq_srcdir)
# gb_shard_sync and the postgres_fdw set-up speak libpq to other shards.
SHLIB_LINK_INTERNAL = $(libpq)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: every object depends on every header.
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# Static analysis; both must stay silent on src/.
lint:
	cppcheck --error-exitcode=1 --enable=warning,style,performance,portability \
		--inline-suppr --quiet -I src '-Dpg_attribute_aligned(a)=' src/
	clang-tidy --quiet src/*.c -- -I src -I $(shell $(PG_CONFIG) --includedir-server) -I $(shell $(PG_CONFIG) --includedir) -D_GNU_SOURCE

.PHONY: lint
