/* Tests of common/fp_txn.c: what DELIVERY=exactly-once does after each class of librdkafka
 * transaction error, and when a transaction is due. */
#include <librdkafka/rdkafka.h>

#include "fp_test.h"
#include "common/fp_txn.h"

FP_TEST(txn_classify_error_classes)
{
    /* has_error, fatal, retriable, requires_abort → action */
    FP_CHECK_INT(fp_txn_classify(false, false, false, false), FP_TXN_DONE);
    FP_CHECK_INT(fp_txn_classify(true, false, true, false), FP_TXN_RETRY);
    FP_CHECK_INT(fp_txn_classify(true, false, false, true), FP_TXN_ABORT);
    FP_CHECK_INT(fp_txn_classify(true, false, true, true), FP_TXN_ABORT); /* abort wins */
    FP_CHECK_INT(fp_txn_classify(true, true, true, true), FP_TXN_FATAL);  /* fatal wins */
    FP_CHECK_INT(fp_txn_classify(true, true, false, false), FP_TXN_FATAL);
    /* An error of no known class leaves the outcome unknown: abort and read again. */
    FP_CHECK_INT(fp_txn_classify(true, false, false, false), FP_TXN_ABORT);
}

FP_TEST(txn_action_of_librdkafka_errors)
{
    /* Errors made by librdkafka's own constructor carry no class flags: abort. */
    FP_CHECK_INT(fp_txn_action_of(NULL, "commit_transaction"), FP_TXN_DONE);
    FP_CHECK_INT(fp_txn_action_of(rd_kafka_error_new(RD_KAFKA_RESP_ERR__TIMED_OUT, "timed out"),
                                  "commit_transaction"),
                 FP_TXN_ABORT);
}

FP_TEST(txn_due)
{
    FP_CHECK(!fp_txn_due(1000, 1050, 100, false, 10, 1000));
    FP_CHECK(fp_txn_due(1000, 1100, 100, false, 10, 1000));   /* interval reached */
    FP_CHECK(fp_txn_due(1000, 1001, 100, false, 1000, 1000)); /* message bound reached */
    FP_CHECK(fp_txn_due(1000, 1001, 100, true, 1, 1000));     /* input drained */
    FP_CHECK(!fp_txn_due(1000, 1001, 100, true, 0, 1000));    /* drained, nothing to commit */
}
