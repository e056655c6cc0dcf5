/* Tests of common/fp_config.c: loading, validation, redaction. */
#include <stdlib.h>
#include <string.h>

#include "common/fp_config.h"
#include "common/fp_kafka.h"
#include "common/fp_log.h"
#include "fp_test.h"

typedef struct test_config {
    fp_common_config common;
    const char *dsn;
    const char *secret;
    int64_t n;
    bool flag;
} test_config;

static const fp_option test_options[] = {
    FP_COMMON_OPTIONS("g", "in", "out", "9100", "8388608"),
    {"T_DSN", FP_OPT_DSN, "host=x", "dsn", false, true, 0, 0, NULL, offsetof(test_config, dsn)},
    {"T_SECRET", FP_OPT_STRING, NULL, "secret", true, false, 0, 0, NULL,
     offsetof(test_config, secret)},
    {"T_N", FP_OPT_INT, "5", "n", false, false, 1, 10, NULL, offsetof(test_config, n)},
    {"T_FLAG", FP_OPT_BOOL, "false", "flag", false, false, 0, 0, NULL, offsetof(test_config, flag)},
    FP_OPT_TABLE_END,
};

static void clear_env(void)
{
    unsetenv("T_N");
    unsetenv("T_FLAG");
    unsetenv("HTTP_PORT");
    unsetenv("LOG_LEVEL");
    unsetenv("KAFKA_GROUP_ID");
}

FP_TEST(config_defaults)
{
    test_config c;
    char err[256] = "";

    clear_env();
    memset(&c, 0, sizeof(c));
    FP_CHECK_INT(fp_config_load(test_options, &c, err, sizeof(err)), 0);
    FP_CHECK_STR(c.common.kafka_group_id, "g");
    FP_CHECK_STR(c.common.in_topic, "in");
    FP_CHECK_INT(c.common.http_port, 9100);
    FP_CHECK_INT(c.n, 5);
    FP_CHECK(!c.flag);
    FP_CHECK(c.secret == NULL);
}

FP_TEST(config_environment_overrides)
{
    test_config c;
    char err[256] = "";

    clear_env();
    setenv("T_N", "10", 1);
    setenv("T_FLAG", "yes", 1);
    setenv("KAFKA_GROUP_ID", "other", 1);
    memset(&c, 0, sizeof(c));
    FP_CHECK_INT(fp_config_load(test_options, &c, err, sizeof(err)), 0);
    FP_CHECK_INT(c.n, 10);
    FP_CHECK(c.flag);
    FP_CHECK_STR(c.common.kafka_group_id, "other");
    clear_env();
}

FP_TEST(config_rejects_bad_values)
{
    static const struct {
        const char *name, *value, *message;
    } cases[] = {
        {"T_N", "11", "T_N: 11 is out of range [1, 10]"},
        {"T_N", "0", "T_N: 0 is out of range [1, 10]"},
        {"T_N", "5x", "T_N: \"5x\" is not an integer"},
        {"T_N", "99999999999999999999", "T_N: \"99999999999999999999\" is not an integer"},
        {"T_FLAG", "maybe", "T_FLAG: \"maybe\" is not a boolean (true/false)"},
        {"HTTP_PORT", "70000", "HTTP_PORT: 70000 is out of range [0, 65535]"},
        {"LOG_LEVEL", "loud", "LOG_LEVEL: \"loud\" is not one of debug|info|warn|error"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        test_config c;
        char err[256] = "";

        clear_env();
        setenv(cases[i].name, cases[i].value, 1);
        memset(&c, 0, sizeof(c));
        FP_CHECK_INT(fp_config_load(test_options, &c, err, sizeof(err)), -1);
        FP_CHECK_STR(err, cases[i].message);
    }
    clear_env();
}

FP_TEST(config_redacts_dsn_passwords)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"host=db port=5432 password=s3cret dbname=x", "host=db port=5432 password=*** dbname=x"},
        {"password='a b\\' c' host=db", "password=*** host=db"},
        {"host=db dbname=x", "host=db dbname=x"},
        {"postgresql://user:pw@db:5432/x?sslmode=require",
         "postgresql://user:***@db:5432/x?sslmode=require"},
        {"postgres://user@db/x", "postgres://user@db/x"},
        /* Not a connection string libpq takes (no option "passwordless"): hidden whole. */
        {"passwordless=1 host=db", "***"},
        /* Every option libpq marks secret, in each place a connection string can hold it. */
        {"postgresql://fp@db/x?password=S3cr3t-q&sslmode=require",
         "postgresql://fp@db/x?password=***&sslmode=require"},
        {"host=db sslpassword=S3cr3t-ssl sslkey=/k", "host=db sslpassword=*** sslkey=/k"},
        {"postgresql://fp:S3cr3t%20u@db/x?sslpassword=S3cr3t-ssl",
         "postgresql://fp:***@db/x?sslpassword=***"},
        {"host=db password='S3cr3t with spaces' dbname=x", "host=db password=*** dbname=x"},
        {"host = db  password = 'S3cr3t \\' q'", "host = db  password = ***"},
        /* The rest of an unquoted password with a space is no option: libpq refuses the string. */
        {"host=db password=S3cr3t-half rest-of-it dbname=x", "***"},
        /* A password that is also another value's text cannot be masked apart: all hidden. */
        {"host=db password=db", "***"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];

        fp_config_redact_dsn(cases[i].in, out, sizeof(out));
        FP_CHECK_STR(out, cases[i].out);
    }
}

FP_TEST(config_secret_names)
{
    FP_CHECK(fp_config_is_secret_name("RDKAFKA_SASL_PASSWORD"));
    FP_CHECK(fp_config_is_secret_name("RDKAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"));
    FP_CHECK(fp_config_is_secret_name("ssl.key.password"));
    FP_CHECK(!fp_config_is_secret_name("RDKAFKA_SECURITY_PROTOCOL"));
    FP_CHECK(!fp_config_is_secret_name("RDKAFKA_SASL_USERNAME"));
}

FP_TEST(kafka_env_to_property)
{
    char prop[64];

    FP_CHECK_INT(fp_kafka_env_to_property("RDKAFKA_SECURITY_PROTOCOL=SASL_SSL", "RDKAFKA_", prop,
                                          sizeof(prop)),
                 0);
    FP_CHECK_STR(prop, "security.protocol");
    FP_CHECK_INT(fp_kafka_env_to_property("RDKAFKA_CONSUMER_FETCH_WAIT_MAX_MS=10",
                                          "RDKAFKA_CONSUMER_", prop, sizeof(prop)),
                 0);
    FP_CHECK_STR(prop, "fetch.wait.max.ms");
    FP_CHECK_INT(fp_kafka_env_to_property("KAFKA_BROKERS=x", "RDKAFKA_", prop, sizeof(prop)), -1);
    FP_CHECK_INT(fp_kafka_env_to_property("RDKAFKA_=x", "RDKAFKA_", prop, sizeof(prop)), -1);
    FP_CHECK_INT(fp_kafka_env_to_property("RDKAFKA_A_VERY_LONG_NAME=1", "RDKAFKA_", prop, 8), -1);
}

/* The start-up log line holds no secret of any kind: libpq's secret options in a key=value DSN
 * and in a URI, URL user-info and query values, every RDKAFKA_* whose name says secret. */
FP_TEST(config_log_shows_no_secret)
{
    typedef struct cfg {
        const char *dsn, *dsn_uri, *url, *tpl, *token;
    } cfg;
    static const fp_option table[] = {
        {"T_DSN", FP_OPT_DSN, NULL, "dsn", false, false, 0, 0, NULL, offsetof(cfg, dsn)},
        {"T_DSN_URI", FP_OPT_DSN, NULL, "dsn", false, false, 0, 0, NULL, offsetof(cfg, dsn_uri)},
        {"T_URL", FP_OPT_STRING, NULL, "url", false, false, 0, 0, NULL, offsetof(cfg, url)},
        {"T_TPL", FP_OPT_STRING, NULL, "url", false, false, 0, 0, NULL, offsetof(cfg, tpl)},
        {"T_TOKEN", FP_OPT_STRING, NULL, "token", true, false, 0, 0, NULL, offsetof(cfg, token)},
        FP_OPT_TABLE_END,
    };
    static const char *const secrets[] = {
        "pw-kv-1 with space", "pw-ssl-2", "pw-uri-3", "pw-query-4", "pw-user-5", "key-api-6",
        "pw-kafka-7",         "oauth-8",  "client-9", "keypw-10",   "token-11",
    };
    cfg c = {"host=db password='pw-kv-1 with space' sslpassword=pw-ssl-2",
             "postgresql://fp:pw-uri-3@db/x?password=pw-query-4",
             "http://geo:pw-user-5@127.0.0.1:1/nominatim",
             "http://127.0.0.1:1/assets/{device_id}?api_key=key-api-6", "token-11"};
    char *log;

    setenv("RDKAFKA_SASL_PASSWORD", "pw-kafka-7", 1);
    setenv("RDKAFKA_SASL_OAUTHBEARER_CONFIG", "principal=fp extension_x=oauth-8", 1);
    setenv("RDKAFKA_CONSUMER_SASL_OAUTHBEARER_CLIENT_SECRET", "client-9", 1);
    setenv("RDKAFKA_SSL_KEY_PASSWORD", "keypw-10", 1);
    FP_CHECK_INT(fp_test_capture_stderr(), 0);
    fp_config_log(table, &c);
    log = fp_test_captured_stderr();
    FP_CHECK(log != NULL && strstr(log, "effective configuration") != NULL);
    for (size_t i = 0; log != NULL && i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (strstr(log, secrets[i]) != NULL)
            fp_test_fail(__FILE__, __LINE__, "secret \"%s\" in the log: %s", secrets[i], log);
    /* What is not secret still shows. */
    FP_CHECK(log != NULL && strstr(log, "host=db") != NULL && strstr(log, "{device_id}") != NULL);
    free(log);
    unsetenv("RDKAFKA_SASL_PASSWORD");
    unsetenv("RDKAFKA_SASL_OAUTHBEARER_CONFIG");
    unsetenv("RDKAFKA_CONSUMER_SASL_OAUTHBEARER_CLIENT_SECRET");
    unsetenv("RDKAFKA_SSL_KEY_PASSWORD");
}

FP_TEST(config_redacts_urls)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"http://127.0.0.1:8080/nominatim", "http://127.0.0.1:8080/nominatim"},
        {"https://user:pw@geo.example/nominatim", "https://***@geo.example/nominatim"},
        {"https://tok3n@geo.example/", "https://***@geo.example/"},
        {"https://reg.example/assets/{device_id}?api_key=K3y&format=json#top",
         "https://reg.example/assets/{device_id}?api_key=***&format=***#top"},
        {"https://reg.example/a?flag&x=", "https://reg.example/a?flag&x=***"},
        {"SASL_SSL://broker:9093", "SASL_SSL://broker:9093"},
        {"not a url", "not a url"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];

        fp_config_redact_url(cases[i].in, out, sizeof(out));
        FP_CHECK_STR(out, cases[i].out);
    }
}

/* A PG_DSN libpq cannot parse is a configuration error, and the message quotes none of it (libpq
 * quotes the words it stumbles on, which may be the rest of a password). */
FP_TEST(config_refuses_unparsable_dsn_without_quoting_it)
{
    typedef struct cfg {
        const char *dsn;
    } cfg;
    static const fp_option table[] = {
        {"T_DSN", FP_OPT_DSN, NULL, "dsn", false, false, 0, 0, NULL, offsetof(cfg, dsn)},
        FP_OPT_TABLE_END,
    };
    static const char *const bad[] = {"host=db password=half-one half-two",
                                      "postgresql://u:pw-x@[::1/db", "host=db password='unended"};
    cfg c = {NULL};
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("T_DSN", bad[i], 1);
        FP_CHECK_INT(fp_config_load(table, &c, err, sizeof(err)), -1);
        if (strstr(err, "T_DSN: not a libpq connection string or URI (") != err)
            fp_test_fail(__FILE__, __LINE__, "message: %s", err);
        if (strstr(err, "half") != NULL || strstr(err, "pw-x") != NULL ||
            strstr(err, "unended") != NULL)
            fp_test_fail(__FILE__, __LINE__, "the message quotes the DSN: %s", err);
    }
    setenv("T_DSN", "postgresql://u@db/x?sslmode=require", 1);
    FP_CHECK_INT(fp_config_load(table, &c, err, sizeof(err)), 0);
    unsetenv("T_DSN");
}

/* A registered secret never reaches a log line, as is or escaped in JSON, whoever logs it. */
FP_TEST(log_masks_registered_secrets)
{
    char *log;

    fp_log_add_secret("abc", 3); /* too short to mask: ignored */
    fp_log_add_secret("s3cr\"et-value", 13);
    FP_CHECK_INT(fp_test_capture_stderr(), 0);
    fp_log_kv(FP_LOG_ERROR, "connect failed", "error", "auth s3cr\"et-value refused abc",
              FP_KV_END);
    fp_error("twice: s3cr\"et-values3cr\"et-value");
    log = fp_test_captured_stderr();
    FP_CHECK(log != NULL);
    if (log != NULL) {
        FP_CHECK(strstr(log, "et-value") == NULL);
        FP_CHECK(strstr(log, "auth *** refused abc") != NULL);
        FP_CHECK(strstr(log, "twice: ******") != NULL);
    }
    free(log);
    fp_log_clear_secrets();
}
