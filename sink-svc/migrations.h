/* The schema migrations, embedded from the .sql files in sink-svc/migrations at build time
 * (embed-sql.awk), in file-name order. Each is applied once, in its own transaction, and recorded
 * in fleetpipe_schema_migrations. */
#ifndef MIGRATIONS_H
#define MIGRATIONS_H

struct migration {
    const char *name;
    const char *sql;
};

extern const struct migration migrations_table[];
extern const int migrations_count;

#endif
