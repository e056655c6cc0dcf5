/* fp_time: RFC 3339 timestamps and clocks (see fp_time.h for the contracts).
 *
 * The civil-date conversions are Howard Hinnant's days_from_civil and civil_from_days
 * (https://howardhinnant.github.io/date_algorithms.html): exact for the proleptic Gregorian
 * calendar, branch-light and free of the C library's time zone and locale state. */
#include "common/fp_time.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#define MS_PER_DAY 86400000LL

/* 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z, the range of four-digit years. */
#define FP_TIME_MIN_MS (-719528LL * MS_PER_DAY)
#define FP_TIME_MAX_MS (2932897LL * MS_PER_DAY - 1)

/* Years are clamped to this magnitude so that the era arithmetic cannot overflow; no
 * timestamp comes anywhere near it. */
#define CIVIL_YEAR_LIMIT 1000000000000LL
#define CIVIL_DAYS_LIMIT (CIVIL_YEAR_LIMIT * 366)

int64_t fp_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    if (y > CIVIL_YEAR_LIMIT)
        y = CIVIL_YEAR_LIMIT;
    else if (y < -CIVIL_YEAR_LIMIT)
        y = -CIVIL_YEAR_LIMIT;
    /* Out-of-range months and days give a meaningless date, but never an overflow. */
    if (m < 1)
        m = 1;
    else if (m > 12)
        m = 12;
    if (d < 1)
        d = 1;
    else if (d > 31)
        d = 31;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);                       /* [0, 399] */
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + (int64_t)doe - 719468;
}

void fp_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t z, era, yy;
    unsigned doe, yoe, doy, mp;

    if (days > CIVIL_DAYS_LIMIT)
        days = CIVIL_DAYS_LIMIT;
    else if (days < -CIVIL_DAYS_LIMIT)
        days = -CIVIL_DAYS_LIMIT;

    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);                          /* [0, 146096] */
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    yy = (int64_t)yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* [0, 365] */
    mp = (5 * doy + 2) / 153;                      /* [0, 11] */
    *d = doy - (153 * mp + 2) / 5 + 1;             /* [1, 31] */
    *m = mp < 10 ? mp + 3 : mp - 9;                /* [1, 12] */
    *y = yy + (*m <= 2);
}

/* Writes v (0..99) as two decimal digits. */
static inline void put_2digits(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

/* The last two dates ("YYYY-MM-DD") formatted on this thread. Consecutive calls nearly always
 * fall on a day seen just before (a record's time and its receipt, the records of one frame),
 * so the two entries spare most calls the calendar arithmetic. */
struct date_cache_entry {
    int64_t days;
    char text[10];
    bool valid;
};

static _Thread_local struct date_cache_entry date_cache[2];
static _Thread_local unsigned date_cache_next;

/* Writes "YYYY-MM-DD" of `days` since the epoch (years 0000..9999) into out. */
static void put_date(int64_t days, char *out)
{
    struct date_cache_entry *e;
    int64_t y;
    unsigned m, d;

    for (size_t i = 0; i < 2; i++) {
        if (date_cache[i].valid && date_cache[i].days == days) {
            memcpy(out, date_cache[i].text, sizeof(date_cache[i].text));
            return;
        }
    }
    fp_civil_from_days(days, &y, &m, &d);
    put_2digits(out, (unsigned)y / 100);
    put_2digits(out + 2, (unsigned)y % 100);
    out[4] = '-';
    put_2digits(out + 5, m);
    out[7] = '-';
    put_2digits(out + 8, d);

    e = &date_cache[date_cache_next];
    date_cache_next ^= 1;
    e->days = days;
    memcpy(e->text, out, sizeof(e->text));
    e->valid = true;
}

/* The last two times formatted on this thread, whole. A batch's records share their time of
 * receipt, and an encoded record alternates it with the record's own time, so the receipt is
 * nearly always one of the two. */
struct time_cache_entry {
    int64_t ms;
    char text[FP_RFC3339_LEN];
    bool valid;
};

static _Thread_local struct time_cache_entry time_cache[2];
static _Thread_local unsigned time_cache_next;

bool fp_time_in_range(int64_t ms)
{
    return ms >= FP_TIME_MIN_MS && ms <= FP_TIME_MAX_MS;
}

int fp_time_format_ms(int64_t ms, char *out, size_t out_size)
{
    struct time_cache_entry *e;
    int64_t days, rem;
    unsigned sod, msec;

    if (out == NULL || out_size < FP_RFC3339_LEN + 1) {
        if (out != NULL && out_size > 0)
            out[0] = '\0';
        return -1;
    }
    if (!fp_time_in_range(ms)) {
        out[0] = '\0';
        return -1;
    }

    for (size_t i = 0; i < 2; i++) {
        if (time_cache[i].valid && time_cache[i].ms == ms) {
            memcpy(out, time_cache[i].text, FP_RFC3339_LEN);
            out[FP_RFC3339_LEN] = '\0';
            return FP_RFC3339_LEN;
        }
    }

    /* Floor division, so that times before 1970 fall on the previous day. */
    days = ms / MS_PER_DAY;
    rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    sod = (unsigned)rem / 1000;
    msec = (unsigned)rem % 1000;

    put_date(days, out);
    out[10] = 'T';
    put_2digits(out + 11, sod / 3600);
    out[13] = ':';
    put_2digits(out + 14, sod / 60 % 60);
    out[16] = ':';
    put_2digits(out + 17, sod % 60);
    out[19] = '.';
    out[20] = (char)('0' + msec / 100);
    put_2digits(out + 21, msec % 100);
    out[23] = 'Z';
    out[24] = '\0';

    e = &time_cache[time_cache_next];
    time_cache_next ^= 1;
    e->ms = ms;
    memcpy(e->text, out, FP_RFC3339_LEN);
    e->valid = true;
    return FP_RFC3339_LEN;
}

/* Reads exactly n decimal digits at s into *v; false when one of them is not a digit. */
static bool read_digits(const char *s, int n, unsigned *v)
{
    unsigned acc = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        acc = acc * 10 + (unsigned)(s[i] - '0');
    }
    *v = acc;
    return true;
}

/* Days in month m (1..12) of year y of the proleptic Gregorian calendar. */
static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : mdays[m - 1];
}

int fp_time_parse_ms(const char *s, size_t len, int64_t *ms)
{
    unsigned year, mon, day, hour, min, sec, frac = 0, oh, om;
    int64_t offset_min = 0, total;
    size_t i;

    if (s == NULL || ms == NULL || len < 20)
        return -1;
    if (!read_digits(s, 4, &year) || s[4] != '-' || !read_digits(s + 5, 2, &mon) || s[7] != '-' ||
        !read_digits(s + 8, 2, &day))
        return -1;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
        return -1;
    if (!read_digits(s + 11, 2, &hour) || s[13] != ':' || !read_digits(s + 14, 2, &min) ||
        s[16] != ':' || !read_digits(s + 17, 2, &sec))
        return -1;
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 || min > 59 ||
        sec > 60)
        return -1;

    i = 19;
    if (s[i] == '.') {
        size_t first = ++i;
        unsigned scale = 100;

        /* Digits beyond milliseconds are read and dropped (truncation, not rounding). */
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            frac += (unsigned)(s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == first)
            return -1;
    }
    if (i >= len)
        return -1;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        if (len - i < 6 || !read_digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            !read_digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset_min = (int64_t)oh * 60 + om;
        if (s[i] == '-')
            offset_min = -offset_min;
        i += 6;
    } else {
        return -1;
    }
    if (i != len)
        return -1;

    /* A leap second cannot be represented in ms since epoch; the last instant of the
     * preceding second keeps the order of events. */
    if (sec == 60) {
        sec = 59;
        frac = 999;
    }

    total = fp_days_from_civil(year, mon, day) * MS_PER_DAY +
            ((int64_t)hour * 3600 + (int64_t)min * 60 + sec) * 1000 + frac - offset_min * 60000;
    /* An offset can carry 0000-01-01 or 9999-12-31 out of the four-digit years; such a time
     * could not be written back, so it is rejected here rather than failing later. */
    if (total < FP_TIME_MIN_MS || total > FP_TIME_MAX_MS)
        return -1;
    *ms = total;
    return 0;
}

int64_t fp_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fp_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double fp_mono_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
