/* Tests of common/fp_metrics.c against a golden exposition text. */
#include "common/fp_metrics.h"
#include "fp_test.h"

FP_TEST(metrics_exposition_golden)
{
    static const double bounds[] = {0.1, 1};
    static const char expected[] = "# HELP fleetpipe_a_total Things \\\\ counted\\nover lines.\n"
                                   "# TYPE fleetpipe_a_total counter\n"
                                   "fleetpipe_a_total{code=\"x\"} 3\n"
                                   "fleetpipe_a_total{code=\"y\"} 0\n"
                                   "# HELP fleetpipe_b_seconds Durations.\n"
                                   "# TYPE fleetpipe_b_seconds histogram\n"
                                   "fleetpipe_b_seconds_bucket{stage=\"s\",le=\"0.1\"} 1\n"
                                   "fleetpipe_b_seconds_bucket{stage=\"s\",le=\"1\"} 2\n"
                                   "fleetpipe_b_seconds_bucket{stage=\"s\",le=\"+Inf\"} 3\n"
                                   "fleetpipe_b_seconds_sum{stage=\"s\"} 5.55\n"
                                   "fleetpipe_b_seconds_count{stage=\"s\"} 3\n"
                                   "# HELP fleetpipe_c A gauge.\n"
                                   "# TYPE fleetpipe_c gauge\n"
                                   "fleetpipe_c -2.5\n";
    fp_buf out = {0};
    fp_histogram *h;

    fp_metrics_reset();
    fp_gauge_set(fp_metrics_gauge("fleetpipe_c", "A gauge.", NULL), -2.5);
    fp_counter_add(
        fp_metrics_counter("fleetpipe_a_total", "Things \\ counted\nover lines.", "code=\"x\""), 2);
    fp_metrics_counter("fleetpipe_a_total", "ignored", "code=\"y\"");
    fp_counter_inc(fp_metrics_counter("fleetpipe_a_total", "ignored", "code=\"x\""));
    h = fp_metrics_histogram("fleetpipe_b_seconds", "Durations.", "stage=\"s\"", bounds, 2);
    fp_histogram_observe(h, 0.05);
    fp_histogram_observe(h, 0.5);
    fp_histogram_observe(h, 5);
    FP_CHECK_INT(fp_metrics_render(&out), 0);
    FP_CHECK_STR(fp_buf_cstr(&out), expected);
    FP_CHECK_INT(fp_histogram_count(h), 3);
    fp_buf_free(&out);
    fp_metrics_reset();
}

FP_TEST(metrics_same_series_is_shared)
{
    fp_counter *a, *b;

    fp_metrics_reset();
    a = fp_metrics_counter("fleetpipe_x_total", "x", "k=\"1\"");
    b = fp_metrics_counter("fleetpipe_x_total", "x", "k=\"1\"");
    FP_CHECK(a == b);
    fp_counter_add(a, 5);
    FP_CHECK_INT(fp_counter_value(b), 5);
    fp_metrics_reset();
}
