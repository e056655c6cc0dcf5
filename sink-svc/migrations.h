/* The schema migrations, embedded from the .sql files in sink-svc/migrations at build time
 * (embed-sql.awk), in file-name order. Each is applied once, in its own transaction, and recorded
 * in fleetpipe_schema_migrations. */
#ifndef FP_MIGRATIONS_H
#define FP_MIGRATIONS_H

struct fp_migration {
    const char *name;
    const char *sql;
};

extern const struct fp_migration fp_migrations[];
extern const int fp_migrations_count;

#endif
