/* Tests of sink-svc/pg.c that need no database: how a failure is classified, and what the
 * sink logs when the database cannot be reached at all. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fp_test.h"
#include "sink-svc/pg.h"

/* The SQLSTATEs that are the row's fault go to the DLQ; any other code, in the same classes
 * too, is the infrastructure's: narrowing a column (22001) or adding a unique index (23505) or a
 * foreign key (23503) must not divert the stream into the DLQ. */
FP_TEST(pg_sqlstate_allow_list)
{
    static const char *const data[] = {"22P02", "22003", "23502", "22007",
                                       "22008", "22021", "22P05", "23514"};
    static const char *const infra[] = {
        "22001", /* string_data_right_truncation: a column narrowed by an operator */
        "22000", "22023", "22P04", "23000", "23001", "23503", /* foreign_key_violation */
        "23505", /* unique_violation beyond the primary key (which ON CONFLICT absorbs) */
        "23P01", "08006", "40001", "40P01", "42501", "42P01", "42703", "53100",
        "53300", "57P01", "25006", "XX000", "22",    "",      "2200",  "22P021"};

    for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++)
        if (!pg_sqlstate_is_data(data[i]))
            fp_test_fail(__FILE__, __LINE__, "%s should be the row's fault", data[i]);
    for (size_t i = 0; i < sizeof(infra) / sizeof(infra[0]); i++)
        if (pg_sqlstate_is_data(infra[i]))
            fp_test_fail(__FILE__, __LINE__, "\"%s\" should be the infrastructure's", infra[i]);
    FP_CHECK(!pg_sqlstate_is_data(NULL));
}

/* A loopback port on which nothing listens (bound, then closed). Returns 0 when none. */
static int closed_port(void)
{
    struct sockaddr_in sin = {0};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
        port = ntohs(sin.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* The very first connection attempt that fails is logged with libpq's reason (not only a
 * connection lost after it had worked), once, not at every retry. */
FP_TEST(pg_first_connection_failure_is_logged_once)
{
    char dsn[128];
    char *log;
    pg_conn *pg;
    int port = closed_port();

    FP_CHECK(port > 0);
    snprintf(dsn, sizeof(dsn), "host=127.0.0.1 port=%d dbname=fleetpipe connect_timeout=2", port);
    pg = pg_new(dsn, DIALECT_POSTGRES);
    FP_CHECK(pg != NULL);
    if (pg == NULL || fp_test_capture_stderr() < 0)
        return;
    FP_CHECK_INT(pg_ensure(pg), PG_RETRY);
    FP_CHECK_INT(pg_ensure(pg), PG_RETRY);
    log = fp_test_captured_stderr();
    FP_CHECK(log != NULL);
    if (log != NULL) {
        const char *first = strstr(log, "database unavailable");

        FP_CHECK(first != NULL);
        FP_CHECK(strstr(log, "\"operation\":\"connect\"") != NULL);
        /* libpq's reason, with the address it tried. */
        FP_CHECK(strstr(log, "127.0.0.1") != NULL);
        FP_CHECK(first == NULL || strstr(first + 1, "database unavailable") == NULL);
        if (first == NULL)
            fprintf(stderr, "  captured: %s\n", log);
    }
    free(log);
    pg_free(pg);
}
