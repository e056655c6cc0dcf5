/* Tests of parser-svc/iso15143.c: ISO 15143-3 (AEMP 2.0) fleet snapshot pages to canonical
 * records, and of the partial-failure hook in parser-svc/decode.c that it uses.
 *
 * The pages are written from the standard's documented structure, with the spellings of
 * several OEM feeds. Payloads and expected records are written with ' for " (readability);
 * q() turns them into JSON. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser-svc/decode.h"
#include "common/fp_buf.h"
#include "common/fp_record.h"
#include "fp_test.h"

#define NOW_MS  INT64_C(1772437513204) /* 2026-03-02T07:45:13.204Z */
#define NOW_TXT "'received_at':'2026-03-02T07:45:13.204Z'"
#define CT      "application/iso15143-snapshot+json"

/* s with every ' turned into ", in a buffer of its own (freed at exit by the OS: tests only). */
static const char *q(const char *s)
{
    static char bufs[16][8192];
    static int next;
    char *out = bufs[next++ % 16];
    size_t i = 0;

    for (; s[i] != '\0' && i + 1 < sizeof(bufs[0]); i++)
        out[i] = s[i] == '\'' ? '"' : s[i];
    out[i] = '\0';
    return out;
}

/* Decodes from an exact-size heap copy (AddressSanitizer sees reads past its end), through
 * detection: content type ct when not NULL, else sniffing. */
static int decode(const char *payload, const char *ct, fp_record_batch *b, decode_error *err)
{
    size_t len = strlen(payload);
    uint8_t *copy = malloc(len > 0 ? len : 1);
    int rc;

    if (copy == NULL)
        return -2;
    memcpy(copy, payload, len);
    {
        decode_input in = {copy, len, NULL, 0, NOW_MS};

        rc = decode_payload(NULL, ct, ct != NULL ? strlen(ct) : 0, &in, b, err);
    }
    free(copy);
    return rc;
}

static const char *record_json(const fp_record *r, fp_buf *buf)
{
    fp_buf_clear(buf);
    if (fp_record_encode_json(r, buf) < 0)
        return "(encode failed)";
    return fp_buf_cstr(buf);
}

/* Decodes a page (q-quoted) that must succeed with no failed machine, and compares every
 * record's JSON (q-quoted) with `expected`. */
static void check_page(const char *page, const char *const *expected, size_t n)
{
    fp_record_batch b = {0};
    decode_error err = {0};
    fp_buf buf = {0};

    if (decode(q(page), NULL, &b, &err) != 0)
        fp_test_fail(__FILE__, __LINE__, "page %s: %s: %s", page, err.code, err.message);
    FP_CHECK_INT(b.failed_len, 0);
    FP_CHECK_INT(b.len, n);
    for (size_t i = 0; i < b.len && i < n; i++)
        FP_CHECK_STR(record_json(&b.recs[i], &buf), q(expected[i]));
    fp_buf_free(&buf);
    decode_batch_free(&b);
}

/* Decodes a payload that must fail whole with `code`. */
static void check_refused(const char *payload, const char *ct, const char *code)
{
    fp_record_batch b = {0};
    decode_error err = {0};

    FP_CHECK_INT(decode(payload, ct, &b, &err), -1);
    FP_CHECK_STR(err.code, code);
    FP_CHECK(err.message[0] != '\0');
    FP_CHECK_INT(b.len, 0);
    FP_CHECK_INT(b.failed_len, 0);
    decode_batch_free(&b);
}

#define HEAD(id) "{'schema':1,'device_id':'" id "',"
#define ASSET(oem, model, serial)                                                                  \
    "'enrichment':{'status':'none','asset':{'oem':'" oem "','model':'" model                       \
    "','serial_number':'" serial "'}}}"

/* The example page of README.md and PROTOCOLS.md. */
static const char example_page[] =
    "{'Links':[{'rel':'next','href':'https://oem.example/aemp/fleet/2'}],"
    "'SnapshotTime':'2026-03-02T07:00:00Z','Equipment':[{"
    "'EquipmentHeader':{'OEMName':'CAT','Model':'320','EquipmentID':'EX-07',"
    "'SerialNumber':'ZAP01234','PIN':'CAT0320GZAP01234'},"
    "'Location':{'datetime':'2026-03-02T06:55:00Z','Latitude':55.6761,'Longitude':12.5683,"
    "'AltitudeUnits':'feet','Altitude':100},"
    "'CumulativeOperatingHours':{'datetime':'2026-03-02T06:55:00Z','Hour':1234.5},"
    "'Distance':{'datetime':'2026-03-02T06:00:00Z','OdometerUnits':'kilometre','Odometer':5210.5},"
    "'FuelUsed':{'datetime':'2026-03-02T06:00:00Z','FuelUnits':'litre','FuelConsumed':8000},"
    "'FuelRemaining':{'datetime':'2026-03-02T06:55:00Z','Percent':62},"
    "'EngineStatus':{'datetime':'2026-03-02T06:55:00Z','Running':true}}]}";

FP_TEST(iso15143_example_page)
{
    /* Two datetimes, two records; 100 ft is 30.48 m. */
    static const char *const expected[] = {
        HEAD("CAT0320GZAP01234") "'ts':'2026-03-02T06:55:00.000Z'," NOW_TXT
                                 ",'format':'iso15143','position':{'lat':55.6761,'lon':12.5683,"
                                 "'alt_m':30.48},'metrics':{'equipment_id':'EX-07','engine_hours_"
                                 "h':1234.5,'fuel_remaining_pct':62,'ignition':true}," ASSET(
                                     "CAT", "320", "ZAP01234"),
        HEAD("CAT0320GZAP01234") "'ts':'2026-03-02T06:00:00.000Z'," NOW_TXT
                                 ",'format':'iso15143','metrics':{'equipment_id':'EX-07','"
                                 "odometer_m':5210500,'fuel_used_l':8000}," ASSET("CAT", "320",
                                                                                  "ZAP01234"),
    };

    check_page(example_page, expected, 2);
}

FP_TEST(iso15143_detect_by_content_type_and_sniffing)
{
    static const char *const sniffed[] = {
        "{'Equipment':[]}",
        "  {'equipment':[]}",
        "{'Links':[{'rel':'self','href':'x'}],'SnapshotTime':'2026-03-02T07:00:00Z',"
        "'Equipment':[]}",
        "{'Fleet':{'Equipment':[]}}",
        "[{'Version':{'a':[1,'}']},'Equipment':[]},{'Equipment':[]}]",
    };
    static const char *const not_sniffed[] = {
        "{'schema':1,'device_id':'d','ts':'2026-03-02T07:45:12Z'}",
        "{'metrics':{'Equipment':[]}}",
        "[{'bn':'gw:','n':'v','v':1}]",
        "{'Equipment'",
        "[]",
    };
    const decoder *dec = decoder_by_name("iso15143");

    FP_CHECK(dec == &decoder_iso15143);
    for (size_t i = 0; i < sizeof(sniffed) / sizeof(sniffed[0]); i++) {
        const char *s = q(sniffed[i]);

        if (decoder_detect(NULL, 0, (const uint8_t *)s, strlen(s)) != &decoder_iso15143)
            fp_test_fail(__FILE__, __LINE__, "not sniffed as a snapshot: %s", s);
    }
    for (size_t i = 0; i < sizeof(not_sniffed) / sizeof(not_sniffed[0]); i++) {
        const char *s = q(not_sniffed[i]);

        if (decoder_detect(NULL, 0, (const uint8_t *)s, strlen(s)) == &decoder_iso15143)
            fp_test_fail(__FILE__, __LINE__, "sniffed as a snapshot: %s", s);
    }
    /* The content type wins over the bytes, parameters and case aside. */
    {
        const char *s = q(not_sniffed[0]);
        static const char ct[] = "Application/ISO15143-Snapshot+JSON; charset=utf-8";

        FP_CHECK(decoder_detect(ct, strlen(ct), (const uint8_t *)s, strlen(s)) ==
                 &decoder_iso15143);
    }
}

FP_TEST(iso15143_oem_spellings_and_units)
{
    /* Lower-case members, numbers as strings, miles, US gallons, feet, DEF, idle hours,
     * the other cumulative hours, Running as a string, spaces and case in units. */
    static const char page[] =
        "{'fleet':{'equipment':[{'equipmentheader':{'oemname':'Komatsu','serialnumber':'K50123'},"
        "'location':{'DateTime':'2026-03-02T07:00:00+01:00','latitude':'-33.5',"
        "'longitude':'-70.25','altitudeunits':' Feet ','altitude':'1000'},"
        "'distance':{'DateTime':'2026-03-02T06:00:00Z','odometerunits':'MILES','odometer':100},"
        "'fuelused':{'DateTime':'2026-03-02T06:00:00Z','fuelunits':'US Gallons',"
        "'fuelconsumed':'10'},"
        "'fuelUsedLast24':{'DateTime':'2026-03-02T06:00:00Z','fuelUnits':'l','fuelConsumed':50},"
        "'DEFRemaining':{'DateTime':'2026-03-02T06:00:00Z','percent':40},"
        "'cumulativeIdleHours':{'DateTime':'2026-03-02T06:00:00Z','hour':'12.5'},"
        "'CumulativePowerTakeOffHours':{'DateTime':'2026-03-02T06:00:00Z','Hour':3},"
        "'CumulativeActiveRegenerationHours':{'DateTime':'2026-03-02T06:00:00Z','Hour':2},"
        "'CumulativeIdleNonOperatingHours':{'DateTime':'2026-03-02T06:00:00Z','Hour':1},"
        "'CumulativeLoadCount':{'DateTime':'2026-03-02T06:00:00Z','Count':17},"
        "'engineStatus':{'DateTime':'2026-03-02T06:00:00Z','running':'FALSE'}},"
        /* Kilometres as km, litres as liters, metres as meters, Running as 1. */
        "{'EquipmentHeader':{'PIN':'JCB1'},"
        "'Location':{'datetime':'2026-03-02T06:00:00Z','Latitude':1,'Longitude':2,"
        "'AltitudeUnits':'meters','Altitude':5},"
        "'Distance':{'datetime':'2026-03-02T06:00:00Z','OdometerUnits':'km','Odometer':2.5},"
        "'FuelUsed':{'datetime':'2026-03-02T06:00:00Z','FuelUnits':'liters','FuelConsumed':7},"
        "'EngineStatus':{'datetime':'2026-03-02T06:00:00Z','Running':1}}]}}";
    static const char *const expected[] = {
        HEAD("Komatsu:K50123") "'ts':'2026-03-02T06:00:00.000Z'," NOW_TXT
                               ",'format':'iso15143','position':{'lat':-33.5,'lon':-70.25,"
                               "'alt_m':304.8},'metrics':{'idle_hours_h':12.5,'idle_non_"
                               "operating_hours_h':1,'regeneration_hours_h':2,'pto_hours_h':3,"
                               "'odometer_m':160934.4,'fuel_used_l':37.85411784,'fuel_used_"
                               "last24_l':50,'def_remaining_pct':40,'load_count':17,'ignition':"
                               "false},'enrichment':{'status':'none','asset':{'oem':'Komatsu',"
                               "'serial_number':'K50123'}}}",
        HEAD("JCB1") "'ts':'2026-03-02T06:00:00.000Z'," NOW_TXT
                     ",'format':'iso15143','position':{'lat':1,'lon':2,'alt_m':5},'metrics':{"
                     "'odometer_m':2500,'fuel_used_l':7,'ignition':true}}",
    };

    check_page(page, expected, 2);
}

FP_TEST(iso15143_datetimes_make_records_in_order)
{
    /* Each distinct datetime its own record, in order of first appearance; the same instant
     * written two ways is one record; an element without datetime takes SnapshotTime. */
    static const char page[] =
        "{'SnapshotTime':'2026-03-02T05:00:00Z','Equipment':[{'EquipmentHeader':{'PIN':'P1'},"
        "'Location':{'datetime':'2026-03-02T07:00:00Z','Latitude':10,'Longitude':20},"
        "'CumulativeOperatingHours':{'datetime':'2026-03-02T06:00:00Z','Hour':5},"
        "'CumulativeIdleHours':{'datetime':'2026-03-02T08:00:00+01:00','Hour':1},"
        "'FuelRemaining':{'Percent':70},"
        "'EngineStatus':{'datetime':'2026-03-02T07:00:00.000Z','Running':false}}]}";
    static const char *const expected[] = {
        HEAD("P1") "'ts':'2026-03-02T07:00:00.000Z'," NOW_TXT
                   ",'format':'iso15143','position':{'lat':10,'lon':20},'metrics':{'idle_hours_"
                   "h':1,'ignition':false}}",
        HEAD("P1") "'ts':'2026-03-02T06:00:00.000Z'," NOW_TXT
                   ",'format':'iso15143','metrics':{'engine_hours_h':5}}",
        HEAD("P1") "'ts':'2026-03-02T05:00:00.000Z'," NOW_TXT
                   ",'format':'iso15143','metrics':{'fuel_remaining_pct':70}}",
    };

    check_page(page, expected, 3);
}

FP_TEST(iso15143_missing_elements_and_values)
{
    /* Null elements, elements without their value and a machine with nothing but its header
     * say nothing; a Location with no coordinates neither. */
    static const char page[] =
        "{'Equipment':[{'EquipmentHeader':{'PIN':'P1'},'Location':null,"
        "'CumulativeOperatingHours':{'datetime':'2026-03-02T06:00:00Z'},"
        "'FuelRemaining':{'datetime':'2026-03-02T06:00:00Z','Percent':null},"
        "'Distance':{'datetime':'2026-03-02T06:00:00Z','Odometer':12}},"
        "{'EquipmentHeader':{'PIN':'P2'}},"
        "{'EquipmentHeader':{'PIN':'P3'},'Location':{'datetime':'2026-03-02T06:00:00Z'}}]}";
    static const char *const expected[] = {
        /* Odometer without units: kilometres. */
        HEAD("P1") "'ts':'2026-03-02T06:00:00.000Z'," NOW_TXT
                   ",'format':'iso15143','metrics':{'odometer_m':12000}}",
    };

    check_page(page, expected, 1);
}

FP_TEST(iso15143_device_id_choice)
{
    /* PIN, else OEMName:SerialNumber, else EquipmentID (a serial number without OEM is no
     * identifier of its own); empty strings count as absent. */
    static const char page[] =
        "{'Equipment':["
        "{'EquipmentHeader':{'PIN':'PIN1','OEMName':'Volvo','SerialNumber':'S1',"
        "'EquipmentID':'E1'},'FuelRemaining':{'datetime':'2026-03-02T06:00:00Z','Percent':1}},"
        "{'EquipmentHeader':{'PIN':'','OEMName':'Volvo','SerialNumber':'S2','EquipmentID':'E2'},"
        "'FuelRemaining':{'datetime':'2026-03-02T06:00:00Z','Percent':2}},"
        "{'EquipmentHeader':{'SerialNumber':'S3','EquipmentID':'E3'},"
        "'FuelRemaining':{'datetime':'2026-03-02T06:00:00Z','Percent':3}}]}";
    fp_record_batch b = {0};
    decode_error err = {0};

    FP_CHECK_INT(decode(q(page), NULL, &b, &err), 0);
    FP_CHECK_INT(b.len, 3);
    if (b.len == 3) {
        FP_CHECK_STR(b.recs[0].device_id, "PIN1");
        FP_CHECK_STR(b.recs[1].device_id, "Volvo:S2");
        FP_CHECK_STR(b.recs[2].device_id, "E3");
        FP_CHECK_MEM(fp_record_str(&b.recs[2], b.recs[2].enrichment.asset_serial),
                     b.recs[2].enrichment.asset_serial.len, "S3");
        FP_CHECK(b.recs[2].enrichment.asset_oem.len == 0);
    }
    decode_batch_free(&b);
}

FP_TEST(iso15143_machine_without_identifier_fails_alone)
{
    static const char page[] =
        "{'Equipment':[{'EquipmentHeader':{'Model':'320','SerialNumber':'S'},"
        "'FuelRemaining':{'datetime':'2026-03-02T06:00:00Z','Percent':1}},"
        "{'FuelRemaining':{'datetime':'2026-03-02T06:00:00Z','Percent':1}},"
        "{'EquipmentHeader':{'PIN':'0123456789012345678901234567890123456789012345678901234567890"
        "123'},'FuelRemaining':{'datetime':'2026-03-02T06:00:00Z','Percent':1}},"
        "{'EquipmentHeader':{'PIN':'ok'},"
        "'FuelRemaining':{'datetime':'2026-03-02T06:00:00Z','Percent':1}}]}";
    fp_record_batch b = {0};
    decode_error err = {0};

    FP_CHECK_INT(decode(q(page), NULL, &b, &err), 0);
    FP_CHECK_INT(b.len, 1);
    FP_CHECK_INT(b.items, 4);
    FP_CHECK_INT(b.failed_len, 3);
    FP_CHECK_STR(b.failed_code, "iso15143_equipment");
    if (b.failed_len == 3) {
        FP_CHECK_INT(b.failed[0].index, 0);
        FP_CHECK_STR(b.failed[0].code, "iso15143_no_identifier");
        FP_CHECK_INT(b.failed[1].index, 1);
        FP_CHECK_STR(b.failed[1].code, "iso15143_no_identifier");
        FP_CHECK_INT(b.failed[2].index, 2);
        FP_CHECK_STR(b.failed[2].code, "bad_device_id");
    }
    if (b.len == 1)
        FP_CHECK_STR(b.recs[0].device_id, "ok");
    decode_batch_free(&b);
}

FP_TEST(iso15143_empty_pages)
{
    static const char *const pages[] = {
        "{'Links':[],'Equipment':[]}",
        "{'Equipment':null}",
        "{'Fleet':{'SnapshotTime':'2026-03-02T06:00:00Z','Equipment':[]}}",
        "[{'Equipment':[]},{'Fleet':{'Equipment':[]}}]",
    };

    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        fp_record_batch b = {0};
        decode_error err = {0};

        if (decode(q(pages[i]), NULL, &b, &err) != 0)
            fp_test_fail(__FILE__, __LINE__, "%s: %s: %s", pages[i], err.code, err.message);
        FP_CHECK_INT(b.len, 0);
        FP_CHECK_INT(b.failed_len, 0);
        decode_batch_free(&b);
    }
}

FP_TEST(iso15143_not_a_snapshot)
{
    /* With the content type, whatever is not a page is refused whole. */
    check_refused(q("{'schema':1,'device_id':'d'}"), CT, "iso15143_not_snapshot");
    check_refused(q("{'Equipment':'none'}"), CT, "iso15143_not_snapshot");
    check_refused(q("{'Fleet':[]}"), CT, "iso15143_not_snapshot");
    check_refused("[]", CT, "iso15143_not_snapshot");
    check_refused("42", CT, "iso15143_not_snapshot");
    /* One element of an array of pages that is no page refuses the array, before any machine
     * decodes. */
    check_refused(q("[{'Equipment':[{'EquipmentHeader':{'PIN':'P'},'FuelRemaining':{'datetime':"
                    "'2026-03-02T06:00:00Z','Percent':1}}]},{'Items':[]}]"),
                  CT, "iso15143_not_snapshot");
    /* And what is not JSON. */
    check_refused(q("{'Equipment':[}"), CT, "json_syntax");
    check_refused(q("{'Equipment':[]} x"), CT, "json_syntax");
    check_refused("{\"Equipment\":[],\"x\":\"\xff\"}", CT, "json_syntax");
    check_refused("{\"Equipment\":[],\"x\":\"\\u0000\"}", CT, "nul_character");
}

FP_TEST(iso15143_broken_machine_among_good)
{
    /* Five machines: the 2nd in furlongs, the 4th with a bad datetime, the 5th off the globe;
     * the 1st and 3rd still decode. */
    static const char page[] =
        "{'Equipment':["
        "{'EquipmentHeader':{'PIN':'A'},'FuelRemaining':{'datetime':'2026-03-02T06:00:00Z',"
        "'Percent':1}},"
        "{'EquipmentHeader':{'PIN':'B'},'FuelRemaining':{'datetime':'2026-03-02T06:00:00Z',"
        "'Percent':1},'Distance':{'datetime':'2026-03-02T06:00:00Z','OdometerUnits':'furlong',"
        "'Odometer':3}},"
        "{'EquipmentHeader':{'PIN':'C'},'FuelRemaining':{'datetime':'2026-03-02T06:00:00Z',"
        "'Percent':3}},"
        "{'EquipmentHeader':{'PIN':'D'},'FuelRemaining':{'datetime':'yesterday','Percent':4}},"
        "{'EquipmentHeader':{'PIN':'E'},'Location':{'datetime':'2026-03-02T06:00:00Z',"
        "'Latitude':91,'Longitude':0}}]}";
    fp_record_batch b = {0};
    decode_error err = {0};
    char why[1024];

    FP_CHECK_INT(decode(q(page), CT, &b, &err), 0);
    FP_CHECK_INT(b.len, 2);
    if (b.len == 2) {
        FP_CHECK_STR(b.recs[0].device_id, "A");
        FP_CHECK_STR(b.recs[1].device_id, "C");
    }
    FP_CHECK_INT(b.items, 5);
    FP_CHECK_INT(b.failed_len, 3);
    FP_CHECK_STR(b.failed_code, "iso15143_equipment");
    decode_partial_message(&b, why, sizeof(why));
    FP_CHECK_STR(why, "3 of 5 items failed: [1] iso15143_unit: Distance.OdometerUnits: unknown "
                      "unit \"furlong\"; [3] iso15143_datetime: FuelRemaining.datetime: not an "
                      "RFC 3339 date-time; [4] bad_position: Location: 91, 0 outside +-90, "
                      "+-180");
    /* The next payload starts clean. */
    FP_CHECK_INT(decode(q("{'Equipment':[]}"), CT, &b, &err), 0);
    FP_CHECK_INT(b.failed_len, 0);
    FP_CHECK(b.failed_code == NULL);
    decode_batch_free(&b);
}

FP_TEST(iso15143_wrong_types_fail_the_machine)
{
    static const char *const machines[] = {
        "5",
        "{'EquipmentHeader':'P'}",
        "{'EquipmentHeader':{'PIN':5}}",
        "{'EquipmentHeader':{'PIN':'P'},'Location':[1,2]}",
        "{'EquipmentHeader':{'PIN':'P'},'Location':{'datetime':'2026-03-02T06:00:00Z',"
        "'Latitude':true,'Longitude':1}}",
        "{'EquipmentHeader':{'PIN':'P'},'Location':{'datetime':'2026-03-02T06:00:00Z',"
        "'Latitude':1}}",
        "{'EquipmentHeader':{'PIN':'P'},'CumulativeOperatingHours':{'datetime':'2026-03-02T06:00:"
        "00Z','Hour':'12 h'}}",
        "{'EquipmentHeader':{'PIN':'P'},'EngineStatus':{'datetime':'2026-03-02T06:00:00Z',"
        "'Running':'yes'}}",
        "{'EquipmentHeader':{'PIN':'P'},'FuelUsed':{'datetime':'2026-03-02T06:00:00Z',"
        "'FuelUnits':'imperial gallon','FuelConsumed':1}}",
        "{'EquipmentHeader':{'PIN':'P'},'FuelUsed':{'datetime':'2026-03-02T06:00:00Z',"
        "'FuelUnits':1,'FuelConsumed':1}}",
        /* No datetime and no SnapshotTime on the page. */
        "{'EquipmentHeader':{'PIN':'P'},'FuelRemaining':{'Percent':1}}",
        /* Before 2000, and more than a day after receipt: the parser's range check. */
        "{'EquipmentHeader':{'PIN':'P'},'FuelRemaining':{'datetime':'1990-01-01T00:00:00Z',"
        "'Percent':1}}",
        "{'EquipmentHeader':{'PIN':'P'},'FuelRemaining':{'datetime':'2026-03-04T00:00:00Z',"
        "'Percent':1}}",
        /* A value the database could not store. */
        "{'EquipmentHeader':{'PIN':'P'},'Distance':{'datetime':'2026-03-02T06:00:00Z',"
        "'Odometer':1e306}}",
    };
    static const char *const codes[] = {
        "iso15143_value",  "iso15143_value", "iso15143_value",    "iso15143_value",
        "iso15143_value",  "bad_position",   "iso15143_value",    "iso15143_value",
        "iso15143_unit",   "iso15143_value", "iso15143_datetime", "ts_out_of_range",
        "ts_out_of_range", "iso15143_value",
    };

    for (size_t i = 0; i < sizeof(machines) / sizeof(machines[0]); i++) {
        char page[2048];
        fp_record_batch b = {0};
        decode_error err = {0};

        snprintf(page, sizeof(page), "{'Equipment':[%s]}", machines[i]);
        FP_CHECK_INT(decode(q(page), NULL, &b, &err), 0);
        FP_CHECK_INT(b.len, 0);
        if (b.failed_len != 1 || strcmp(b.failed[0].code, codes[i]) != 0)
            fp_test_fail(__FILE__, __LINE__, "machine %s: %zu failures, code %s, expected %s",
                         machines[i], b.failed_len, b.failed_len > 0 ? b.failed[0].code : "-",
                         codes[i]);
        decode_batch_free(&b);
    }
}

FP_TEST(iso15143_array_of_pages)
{
    /* Machines are counted over the pages in order. */
    static const char pages[] =
        "[{'Equipment':[{'EquipmentHeader':{'PIN':'A'},'FuelRemaining':{'datetime':"
        "'2026-03-02T06:00:00Z','Percent':1}}]},"
        "{'Fleet':{'SnapshotTime':'2026-03-02T05:00:00Z','Equipment':[{'EquipmentHeader':{},"
        "'FuelRemaining':{'Percent':2}},{'EquipmentHeader':{'PIN':'B'},'FuelRemaining':{"
        "'Percent':3}}]}}]";
    fp_record_batch b = {0};
    decode_error err = {0};

    FP_CHECK_INT(decode(q(pages), NULL, &b, &err), 0);
    FP_CHECK_INT(b.len, 2);
    FP_CHECK_INT(b.items, 3);
    FP_CHECK_INT(b.failed_len, 1);
    if (b.failed_len == 1)
        FP_CHECK_INT(b.failed[0].index, 1);
    if (b.len == 2) {
        FP_CHECK_STR(b.recs[1].device_id, "B");
        FP_CHECK_INT(b.recs[1].ts_ms, NOW_MS - 2 * 3600 * 1000 - 45 * 60 * 1000 - 13204);
    }
    decode_batch_free(&b);
}

FP_TEST(iso15143_hints_survive_json)
{
    /* The hints travel to the enricher as enrichment status "none" and decode back the same. */
    fp_record_batch b = {0};
    decode_error err = {0};
    fp_record again;
    fp_buf first = {0}, second = {0};
    char why[256];

    fp_record_init(&again);
    FP_CHECK_INT(decode(q(example_page), NULL, &b, &err), 0);
    FP_CHECK(b.len > 0);
    if (b.len > 0) {
        FP_CHECK_INT(fp_record_encode_json(&b.recs[0], &first), 0);
        FP_CHECK_INT(fp_record_decode_json(&again, first.data, first.len, why, sizeof(why)), 0);
        FP_CHECK_INT(again.enrichment.status, FP_ENRICH_NONE);
        FP_CHECK(again.enrichment.has_asset);
        FP_CHECK_INT(fp_record_encode_json(&again, &second), 0);
        FP_CHECK_STR(fp_buf_cstr(&second), fp_buf_cstr(&first));
    }
    fp_buf_free(&first);
    fp_buf_free(&second);
    fp_record_free(&again);
    decode_batch_free(&b);
}

FP_TEST(decode_partial_message_bounded)
{
    /* Many failures in a small buffer: as many items as fit, then how many more. */
    fp_record_batch b = {0};
    decode_error why = {"iso15143_unit", "Distance.OdometerUnits: unknown unit \"furlong\""};
    char out[200];
    size_t len;

    for (size_t i = 0; i < 50; i++)
        FP_CHECK_INT(decode_batch_fail_item(&b, "iso15143_equipment", i * 2, &why), 0);
    b.items = 100;
    len = decode_partial_message(&b, out, sizeof(out));
    FP_CHECK_INT(len, strlen(out));
    FP_CHECK(len < sizeof(out));
    FP_CHECK_STR(out, "50 of 100 items failed: [0] iso15143_unit: Distance.OdometerUnits: unknown "
                      "unit \"furlong\"; [2] iso15143_unit: Distance.OdometerUnits: unknown unit "
                      "\"furlong\"; and 48 more");
    /* A buffer of one byte holds the terminator only. */
    FP_CHECK_INT(decode_partial_message(&b, out, 1), 0);
    FP_CHECK_STR(out, "");
    decode_batch_free(&b);
    FP_CHECK(b.failed == NULL && b.failed_len == 0);
}
