#include "common/fp_signal.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t hup_flag;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        hup_flag = 1;
    else
        stop_flag = 1;
}

int fp_signal_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
        sigaction(SIGHUP, &sa, NULL) < 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

bool fp_signal_stop_requested(void)
{
    return stop_flag != 0;
}

void fp_signal_request_stop(void)
{
    stop_flag = 1;
}

void fp_signal_reset_stop(void)
{
    stop_flag = 0;
}

bool fp_signal_take_hup(void)
{
    if (hup_flag == 0)
        return false;
    hup_flag = 0;
    return true;
}
