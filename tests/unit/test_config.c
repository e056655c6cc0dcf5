/* Tests of common/fp_config.c: loading, validation, redaction. */
#include <stdlib.h>
#include <string.h>

#include "fp_config.h"
#include "fp_kafka.h"
#include "fp_test.h"

typedef struct test_config {
    fp_common_config common;
    const char *dsn;
    const char *secret;
    int64_t n;
    bool flag;
} test_config;

static const fp_option test_options[] = {
    FP_COMMON_OPTIONS("g", "in", "out", "9100"),
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
        {"passwordless=1 host=db", "passwordless=1 host=db"},
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
