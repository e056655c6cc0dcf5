/* Tests of enricher-svc/geofence.c: parsing site polygons and finding the site of a position. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fp_buf.h"
#include "fp_test.h"
#include "enricher-svc/geofence.h"

/* GeoJSON pieces. Positions are [lon, lat]. */
#define FC(features) "{\"type\":\"FeatureCollection\",\"features\":[" features "]}"
#define FEATURE(id, name, geometry)                                                                \
    "{\"type\":\"Feature\",\"properties\":{\"id\":" id ",\"name\":\"" name                         \
    "\"},\"geometry\":" geometry "}"
#define POLYGON(rings)      "{\"type\":\"Polygon\",\"coordinates\":[" rings "]}"
#define MULTIPOLYGON(polys) "{\"type\":\"MultiPolygon\",\"coordinates\":[" polys "]}"
#define SQUARE(x0, y0, x1, y1)                                                                     \
    "[[" #x0 "," #y0 "],[" #x1 "," #y0 "],[" #x1 "," #y1 "],[" #x0 "," #y1 "],[" #x0 "," #y0 "]]"

static geofence_set *parse(const char *json, char *err, size_t err_size)
{
    return geofence_parse(json, strlen(json), err, err_size);
}

/* The id of the site at (lat, lon), or "-" when there is none. */
static const char *site_at(const geofence_set *g, double lat, double lon)
{
    const geofence_site *s = geofence_find(g, lat, lon);

    return s != NULL ? s->id : "-";
}

FP_TEST(geofence_square_inside_outside_edge_vertex)
{
    char err[256];
    geofence_set *g = parse(FC(FEATURE("\"yard\"", "Main yard", POLYGON(SQUARE(0, 0, 10, 10)))),
                            err, sizeof(err));

    FP_CHECK(g != NULL);
    FP_CHECK_STR(err, "");
    FP_CHECK_INT(geofence_count(g), 1);
    FP_CHECK_STR(geofence_find(g, 5, 5)->name, "Main yard");
    FP_CHECK_STR(site_at(g, 5, 5), "yard");
    FP_CHECK_STR(site_at(g, 9.999, 0.001), "yard");
    /* Outside, on each side and diagonally. */
    FP_CHECK_STR(site_at(g, 5, 10.001), "-");
    FP_CHECK_STR(site_at(g, 5, -0.001), "-");
    FP_CHECK_STR(site_at(g, 10.001, 5), "-");
    FP_CHECK_STR(site_at(g, -0.001, 5), "-");
    FP_CHECK_STR(site_at(g, 11, 11), "-");
    /* On each edge and each vertex. */
    FP_CHECK_STR(site_at(g, 0, 5), "yard");
    FP_CHECK_STR(site_at(g, 10, 5), "yard");
    FP_CHECK_STR(site_at(g, 5, 0), "yard");
    FP_CHECK_STR(site_at(g, 5, 10), "yard");
    FP_CHECK_STR(site_at(g, 0, 0), "yard");
    FP_CHECK_STR(site_at(g, 0, 10), "yard");
    FP_CHECK_STR(site_at(g, 10, 0), "yard");
    FP_CHECK_STR(site_at(g, 10, 10), "yard");
    /* The edge tolerance is 1e-12 degrees: just within it is on the edge, beyond it is not. */
    FP_CHECK_STR(site_at(g, 10 + 1e-13, 5), "yard");
    FP_CHECK_STR(site_at(g, 5, -1e-13), "yard");
    FP_CHECK_STR(site_at(g, 10 + 1e-9, 5), "-");
    /* Not a number, and no set at all. */
    FP_CHECK_STR(site_at(g, NAN, 5), "-");
    FP_CHECK_STR(site_at(g, 5, NAN), "-");
    FP_CHECK(geofence_find(NULL, 5, 5) == NULL);
    FP_CHECK_INT(geofence_count(NULL), 0);
    FP_CHECK_STR(geofence_site_at(g, 0)->id, "yard");
    FP_CHECK(geofence_site_at(g, 1) == NULL);
    geofence_free(g);
    geofence_free(NULL);
}

FP_TEST(geofence_polygon_with_hole)
{
    char err[256];
    geofence_set *g = parse(
        FC(FEATURE("\"ring\"", "Ring road", POLYGON(SQUARE(0, 0, 10, 10) "," SQUARE(4, 4, 6, 6)))),
        err, sizeof(err));

    FP_CHECK(g != NULL);
    FP_CHECK_STR(site_at(g, 2, 2), "ring");
    FP_CHECK_STR(site_at(g, 5, 8), "ring");
    /* Strictly inside the hole: outside the polygon. */
    FP_CHECK_STR(site_at(g, 5, 5), "-");
    FP_CHECK_STR(site_at(g, 4.5, 5.5), "-");
    /* On the hole's edge and on its vertex: inside. */
    FP_CHECK_STR(site_at(g, 4, 5), "ring");
    FP_CHECK_STR(site_at(g, 5, 6), "ring");
    FP_CHECK_STR(site_at(g, 4, 4), "ring");
    FP_CHECK_STR(site_at(g, 6, 6), "ring");
    /* On the outer edge: inside. */
    FP_CHECK_STR(site_at(g, 0, 5), "ring");
    geofence_free(g);
}

FP_TEST(geofence_multipolygon)
{
    char err[256];
    geofence_set *g =
        parse(FC(FEATURE("\"depots\"", "Depots",
                         MULTIPOLYGON("[" SQUARE(0, 0, 1, 1) "],[" SQUARE(5, 5, 8, 8) "," SQUARE(
                             6, 6, 7, 7) "]")) "," FEATURE("\"other\"", "Other",
                                                           POLYGON(SQUARE(20, 20, 21, 21)))),
              err, sizeof(err));

    FP_CHECK(g != NULL);
    FP_CHECK_INT(geofence_count(g), 2);
    FP_CHECK_STR(site_at(g, 0.5, 0.5), "depots");
    FP_CHECK_STR(site_at(g, 5.5, 5.5), "depots");
    FP_CHECK_STR(site_at(g, 1, 1), "depots");
    /* Between the two polygons, and in the second one's hole. */
    FP_CHECK_STR(site_at(g, 3, 3), "-");
    FP_CHECK_STR(site_at(g, 6.5, 6.5), "-");
    FP_CHECK_STR(site_at(g, 20.5, 20.5), "other");
    geofence_free(g);
}

FP_TEST(geofence_overlapping_sites_smallest_wins)
{
    char err[256];
    /* The largest first in the file, so that file order alone would pick the wrong one. */
    geofence_set *g = parse(
        FC(FEATURE("\"region\"", "Region", POLYGON(SQUARE(0, 0, 100, 60))) "," FEATURE("\"depot\"", "Depot", POLYGON(SQUARE(10, 10, 20, 20))) "," FEATURE(
            "\"dock\"", "Dock",
            POLYGON(SQUARE(
                12, 12, 14,
                14))) "," FEATURE("\"twin-a\"", "Twin A",
                                  POLYGON(SQUARE(
                                      30, 30, 32,
                                      32))) "," FEATURE("\"twin-b\"", "Twin B",
                                                        POLYGON(SQUARE(
                                                            30, 30, 32,
                                                            32))) "," FEATURE("\"left\"", "Left",
                                                                              POLYGON(SQUARE(
                                                                                  40, 40, 42,
                                                                                  42))) "," FEATURE("\"right\"",
                                                                                                    "Right",
                                                                                                    POLYGON(SQUARE(
                                                                                                        41,
                                                                                                        40,
                                                                                                        43,
                                                                                                        42)))),
        err, sizeof(err));

    FP_CHECK(g != NULL);
    FP_CHECK_STR(site_at(g, 13, 13), "dock");
    FP_CHECK_STR(site_at(g, 12, 12), "dock");
    FP_CHECK_STR(site_at(g, 18, 18), "depot");
    FP_CHECK_STR(site_at(g, 20, 15), "depot");
    FP_CHECK_STR(site_at(g, 50, 50), "region");
    FP_CHECK_STR(site_at(g, 21, 15), "region");
    FP_CHECK_STR(site_at(g, 61, 50), "-");
    /* Equal areas: the first in the file wins, for identical and for shifted shapes. */
    FP_CHECK_STR(site_at(g, 31, 31), "twin-a");
    FP_CHECK_STR(site_at(g, 41, 41.5), "left");
    FP_CHECK_STR(site_at(g, 41, 42.5), "right");
    geofence_free(g);
}

FP_TEST(geofence_concave_l_shape)
{
    char err[256];
    geofence_set *g = parse(FC(FEATURE("\"L\"", "L-shaped yard",
                                       POLYGON("[[0,0],[10,0],[10,2],[2,2],[2,10],[0,10],[0,0]]"))),
                            err, sizeof(err));

    FP_CHECK(g != NULL);
    /* Inside the bounding box but not the polygon. */
    FP_CHECK_STR(site_at(g, 5, 5), "-");
    FP_CHECK_STR(site_at(g, 9, 9), "-");
    FP_CHECK_STR(site_at(g, 2.001, 2.001), "-");
    /* In each arm, on the inner edges and on the reflex vertex. */
    FP_CHECK_STR(site_at(g, 1, 5), "L");
    FP_CHECK_STR(site_at(g, 5, 1), "L");
    FP_CHECK_STR(site_at(g, 2, 5), "L");
    FP_CHECK_STR(site_at(g, 5, 2), "L");
    FP_CHECK_STR(site_at(g, 2, 2), "L");
    /* A ray from here passes through the vertices (10, 2) and (2, 2)... */
    FP_CHECK_STR(site_at(g, 1.999, 1), "L");
    /* ...and from here along the edge y = 2. */
    FP_CHECK_STR(site_at(g, 2, 1), "L");
    geofence_free(g);
}

FP_TEST(geofence_negative_coordinates)
{
    char err[256];
    geofence_set *g =
        parse(FC(FEATURE("\"sao-paulo\"", "São Paulo depot",
                         POLYGON("[[-46.70,-23.60],[-46.60,-23.60],[-46.60,-23.50],[-46.70,-23.50],"
                                 "[-46.70,-23.60]]")) "," FEATURE("\"null-island\"", "Null Island",
                                                                  POLYGON(SQUARE(-1, -1, 1, 1)))),
              err, sizeof(err));

    FP_CHECK(g != NULL);
    FP_CHECK_STR(site_at(g, -23.55, -46.65), "sao-paulo");
    FP_CHECK_STR(geofence_find(g, -23.55, -46.65)->name, "São Paulo depot");
    FP_CHECK_STR(site_at(g, -23.60, -46.70), "sao-paulo");
    /* Latitude and longitude swapped, and the mirror images in other hemispheres. */
    FP_CHECK_STR(site_at(g, -46.65, -23.55), "-");
    FP_CHECK_STR(site_at(g, 23.55, -46.65), "-");
    FP_CHECK_STR(site_at(g, -23.55, 46.65), "-");
    FP_CHECK_STR(site_at(g, 0, 0), "null-island");
    FP_CHECK_STR(site_at(g, -0.5, -0.5), "null-island");
    FP_CHECK_STR(site_at(g, -1, -1), "null-island");
    geofence_free(g);
}

FP_TEST(geofence_ids_and_empty_collection)
{
    char err[256];
    geofence_set *g = parse(FC(FEATURE("42", "Integer id", POLYGON(SQUARE(0, 0, 1, 1))) "," FEATURE(
                                "-7", "Negative id", POLYGON(SQUARE(2, 2, 3, 3)))),
                            err, sizeof(err));

    FP_CHECK(g != NULL);
    FP_CHECK_STR(site_at(g, 0.5, 0.5), "42");
    FP_CHECK_STR(site_at(g, 2.5, 2.5), "-7");
    geofence_free(g);

    g = parse("{\"type\":\"FeatureCollection\",\"features\":[]}", err, sizeof(err));
    FP_CHECK(g != NULL);
    FP_CHECK_INT(geofence_count(g), 0);
    FP_CHECK_STR(site_at(g, 0, 0), "-");
    geofence_free(g);
}

FP_TEST(geofence_parse_errors)
{
    static const struct {
        const char *json, *message;
    } cases[] = {
        {"", "not JSON: the input is empty"},
        {"sites: none", "not JSON: syntax error at byte 0"},
        {"{\"type\":\"FeatureCollection\",\"features\":[", "not JSON: syntax error at byte 39"},
        {"{\"type\":\"FeatureCollection\",\"features\":[]} []",
         "not JSON: trailing data at byte 43"},
        {"{\"type\":\"FeatureCollection\",\"features\":[],\"x\":\"\xff\"}",
         "not JSON: invalid UTF-8 at byte 47"},
        {"[]", "not a GeoJSON FeatureCollection: the document is an array, not an object"},
        {"{\"type\":\"Feature\"}", "not a GeoJSON FeatureCollection: \"type\" is \"Feature\""},
        {"{\"features\":[]}", "not a GeoJSON FeatureCollection: \"type\" is missing"},
        {"{\"type\":\"FeatureCollection\"}",
         "FeatureCollection: \"features\" is missing, not an array"},
        {FC("[]"), "features[0]: a feature must be an object, not an array"},
        {FC("{\"type\":\"Point\"}"), "features[0]: \"type\" must be \"Feature\""},
        {FC("{\"type\":\"Feature\",\"properties\":null,\"geometry\":" POLYGON(
             SQUARE(0, 0, 1, 1)) "}"),
         "features[0]: \"properties\" is null; a site needs an object with \"id\" and \"name\""},
        {FC("{\"type\":\"Feature\",\"properties\":{\"name\":\"x\"},\"geometry\":" POLYGON(
             SQUARE(0, 0, 1, 1)) "}"),
         "features[0]: properties has no \"id\""},
        {FC("{\"type\":\"Feature\",\"properties\":{\"id\":\"a\"},\"geometry\":" POLYGON(
             SQUARE(0, 0, 1, 1)) "}"),
         "features[0] (id \"a\"): properties has no \"name\""},
        {FC(FEATURE("true", "x", POLYGON(SQUARE(0, 0, 1, 1)))),
         "features[0]: properties.id must be a string or an integer, not a boolean"},
        {FC(FEATURE("1.5", "x", POLYGON(SQUARE(0, 0, 1, 1)))),
         "features[0]: properties.id must be a string or an integer, not a fractional or huge "
         "number"},
        {FC(FEATURE("\"\"", "x", POLYGON(SQUARE(0, 0, 1, 1)))),
         "features[0]: properties.id is an empty string"},
        {FC("{\"type\":\"Feature\",\"properties\":{\"id\":\"a\",\"name\":3},\"geometry\":" POLYGON(
             SQUARE(0, 0, 1, 1)) "}"),
         "features[0] (id \"a\"): properties.name must be a string, not a number"},
        {FC(FEATURE("\"a\"", "A", POLYGON(SQUARE(0, 0, 1, 1))) "," FEATURE(
             "\"b\"", "B", POLYGON("[[0,0],[1,0],[1,1],[0,1],[0,0.5]]"))),
         "features[1] (id \"b\"): geometry.coordinates[0]: ring is not closed (its last position "
         "must equal its first)"},
        {FC(FEATURE("\"b\"", "B", POLYGON("[[0,0],[1,0],[0,0]]"))),
         "features[0] (id \"b\"): geometry.coordinates[0]: a ring needs at least 4 positions, "
         "this one has 3"},
        {FC(FEATURE("\"b\"", "B", POLYGON("[[0,0],[1,\"0\"],[1,1],[0,0]]"))),
         "features[0] (id \"b\"): geometry.coordinates[0][1]: coordinate 1 is a string, not a "
         "finite number"},
        {FC(FEATURE("\"b\"", "B", POLYGON("[[0,0],[1,0],[1,1e999],[0,0]]"))),
         "features[0] (id \"b\"): geometry.coordinates[0][2]: coordinate 1 is a number, not a "
         "finite number"},
        {FC(FEATURE("\"b\"", "B", POLYGON("[[0,0],[1],[1,1],[0,0]]"))),
         "features[0] (id \"b\"): geometry.coordinates[0][1]: a position holds 1 numbers, "
         "expected 2 (or 3 with altitude)"},
        {FC(FEATURE("\"b\"", "B", POLYGON("[[0,0],[1,0],[1,1],0]"))),
         "features[0] (id \"b\"): geometry.coordinates[0][3]: a position must be an array "
         "[longitude, latitude], not a number"},
        {FC(FEATURE("\"b\"", "B", POLYGON("[[0,0],[1,0],[1,91],[0,0]]"))),
         "features[0] (id \"b\"): geometry.coordinates[0][2]: latitude 91 is out of range "
         "[-90, 90]"},
        {FC(FEATURE("\"b\"", "B", POLYGON("[[0,0],[-180.5,0],[1,1],[0,0]]"))),
         "features[0] (id \"b\"): geometry.coordinates[0][1]: longitude -180.5 is out of range "
         "[-180, 180]"},
        {FC(FEATURE("\"fiji\"", "Fiji",
                    POLYGON("[[179,-17],[-179,-17],[-179,-16],[179,-16],[179,-17]]"))),
         "features[0] (id \"fiji\"): geometry.coordinates[0][1]: edge spans more than 180 "
         "degrees of longitude (polygons across the antimeridian are not supported; split the "
         "site at it)"},
        {FC(FEATURE("\"b\"", "B", POLYGON(SQUARE(0, 0, 9, 9) "," SQUARE(1, 1, 2, 2) ",[[3,3]]"))),
         "features[0] (id \"b\"): geometry.coordinates[2]: a ring needs at least 4 positions, "
         "this one has 1"},
        {FC(FEATURE("\"b\"", "B", MULTIPOLYGON("[" SQUARE(0, 0, 1, 1) "],[[[5,5],[6,5],[6,6]]]"))),
         "features[0] (id \"b\"): geometry.coordinates[1][0]: a ring needs at least 4 positions, "
         "this one has 3"},
        {FC(FEATURE("\"b\"", "B", POLYGON(""))),
         "features[0] (id \"b\"): geometry.coordinates: a polygon needs at least one ring"},
        {FC(FEATURE("\"b\"", "B", MULTIPOLYGON(""))),
         "features[0] (id \"b\"): geometry.coordinates: a MultiPolygon needs at least one "
         "polygon"},
        {FC(FEATURE("\"b\"", "B", "{\"type\":\"Polygon\"}")),
         "features[0] (id \"b\"): geometry.coordinates: a polygon must be an array of rings, not "
         "missing"},
        {FC(FEATURE("\"pin\"", "Pin", "{\"type\":\"Point\",\"coordinates\":[1,2]}")),
         "features[0] (id \"pin\"): unsupported geometry type \"Point\" (a site file holds "
         "Polygon and MultiPolygon features only)"},
        {FC(FEATURE("\"road\"", "Road", "{\"type\":\"LineString\",\"coordinates\":[[1,2],[3,4]]}")),
         "features[0] (id \"road\"): unsupported geometry type \"LineString\" (a site file holds "
         "Polygon and MultiPolygon features only)"},
        {FC(FEATURE("\"x\"", "X", "null")),
         "features[0] (id \"x\"): has no geometry; a site needs a Polygon or a MultiPolygon"},
        {FC(FEATURE("\"a\"", "A", POLYGON(SQUARE(0, 0, 1, 1))) "," FEATURE(
             "\"b\"", "B", POLYGON(SQUARE(0, 0, 1, 1))) "," FEATURE("\"a\"", "A again",
                                                                    POLYGON(SQUARE(0, 0, 1, 1)))),
         "features[2] (id \"a\"): duplicate id (first used by features[0])"},
        {FC(FEATURE("7", "A", POLYGON(SQUARE(0, 0, 1, 1))) "," FEATURE(
             "\"7\"", "B", POLYGON(SQUARE(0, 0, 1, 1)))),
         "features[1] (id \"7\"): duplicate id (first used by features[0])"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512];
        geofence_set *g = parse(cases[i].json, err, sizeof(err));

        FP_CHECK(g == NULL);
        FP_CHECK_STR(err, cases[i].message);
        geofence_free(g);
    }
}

FP_TEST(geofence_error_buffer_handling)
{
    char small[16];
    const char *bad = FC(FEATURE("\"pin\"", "Pin", "{\"type\":\"Point\",\"coordinates\":[1,2]}"));

    /* No buffer at all, and one too small for the message: still NULL, still terminated. */
    FP_CHECK(geofence_parse(bad, strlen(bad), NULL, 0) == NULL);
    FP_CHECK(geofence_parse(bad, strlen(bad), small, sizeof(small)) == NULL);
    FP_CHECK_STR(small, "features[0] (id");
    FP_CHECK(geofence_parse(NULL, 0, small, sizeof(small)) == NULL);
}

FP_TEST(geofence_input_limits)
{
    fp_buf b = {0};
    char err[256];
    geofence_set *g;

    /* One feature too many: refused before any feature is looked at. */
    fp_buf_puts(&b, "{\"type\":\"FeatureCollection\",\"features\":[0");
    for (int i = 0; i < GEOFENCE_MAX_FEATURES; i++)
        fp_buf_puts(&b, ",0");
    fp_buf_puts(&b, "]}");
    g = geofence_parse(b.data, b.len, err, sizeof(err));
    FP_CHECK(g == NULL);
    FP_CHECK_STR(err, "FeatureCollection: more than 100000 features");

    /* One position too many, in a single ring. */
    fp_buf_clear(&b);
    fp_buf_puts(&b, FC(FEATURE("\"big\"", "Big", POLYGON("[[0,0]"))));
    b.len -= strlen("]}}]}"); /* reopen the ring */
    for (int i = 0; i < GEOFENCE_MAX_VERTICES; i++)
        fp_buf_puts(&b, ",[0,0]");
    fp_buf_puts(&b, "]]}}]}");
    g = geofence_parse(b.data, b.len, err, sizeof(err));
    FP_CHECK(g == NULL);
    FP_CHECK_STR(err, "features[0] (id \"big\"): geometry.coordinates[0]: more than 1000000 "
                      "positions in the file");
    fp_buf_free(&b);
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

FP_TEST(geofence_10000_sites)
{
    enum { SIDE = 100 };
    fp_buf b = {0};
    char err[256];
    geofence_set *g;
    uint64_t t0, t1, state = 0x9e3779b97f4a7c15u;
    size_t hits = 0;

    /* Site i (row i / SIDE, column i % SIDE) is a 0.5 x 0.5 degree square with its south-west
     * corner at lon -50 + column, lat -50 + row: a regular pattern with gaps between sites,
     * across both hemispheres. */
    fp_buf_puts(&b, "{\"type\":\"FeatureCollection\",\"features\":[");
    for (int i = 0; i < SIDE * SIDE; i++) {
        double x = -50 + i % SIDE, y = -50 + i / SIDE;

        fp_buf_printf(&b,
                      "%s{\"type\":\"Feature\",\"properties\":{\"id\":\"s%d\",\"name\":\"Site "
                      "%d\"},\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[%.1f,%.1f],"
                      "[%.1f,%.1f],[%.1f,%.1f],[%.1f,%.1f],[%.1f,%.1f]]]}}",
                      i > 0 ? "," : "", i, i, x, y, x + 0.5, y, x + 0.5, y + 0.5, x, y + 0.5, x, y);
    }
    fp_buf_puts(&b, "]}");
    g = geofence_parse(b.data, b.len, err, sizeof(err));
    fp_buf_free(&b);
    FP_CHECK(g != NULL);
    if (g == NULL) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    FP_CHECK_INT(geofence_count(g), SIDE * SIDE);
    /* Every centre maps to its own site, every point between sites to none. */
    for (int i = 0; i < SIDE * SIDE; i++) {
        double x = -50 + i % SIDE, y = -50 + i / SIDE;

        FP_CHECK(geofence_find(g, y + 0.25, x + 0.25) == geofence_site_at(g, (size_t)i));
        FP_CHECK(geofence_find(g, y + 0.75, x + 0.75) == NULL);
        FP_CHECK(geofence_find(g, y + 0.25, x + 0.75) == NULL);
    }

    /* Time lookups spread over the whole grid, hits and misses alike. */
    t0 = now_ns();
    for (int i = 0; i < 1000000; i++) {
        double lat, lon;

        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        lon = -51 + (double)(state & 0xffffff) / 0xffffff * 102;
        lat = -51 + (double)(state >> 40) / 0xffffff * 102;
        hits += geofence_find(g, lat, lon) != NULL;
    }
    t1 = now_ns();
    printf("     geofence: 10000 sites, %.0f ns/lookup (%zu of 1000000 in a site)\n",
           (double)(t1 - t0) / 1e6, hits);
    FP_CHECK(hits > 0);
    geofence_free(g);
}

FP_TEST(geofence_load_files)
{
    char err[512], path[] = "/tmp/fp-geofence-XXXXXX";
    const char *good = FC(FEATURE("\"yard\"", "Yard", POLYGON(SQUARE(0, 0, 1, 1))));
    const char *bad = FC(FEATURE("\"yard\"", "Yard", POLYGON("[[0,0],[1,0],[1,1],[0,1]]")));
    char expected[600];
    geofence_set *g;
    int fd;

    g = geofence_load("/nonexistent/sites.geojson", err, sizeof(err));
    FP_CHECK(g == NULL);
    FP_CHECK_STR(err, "/nonexistent/sites.geojson: cannot open: No such file or directory");

    fd = mkstemp(path);
    FP_CHECK(fd >= 0);
    if (fd < 0)
        return;
    FP_CHECK_INT(write(fd, good, strlen(good)), strlen(good));
    g = geofence_load(path, err, sizeof(err));
    FP_CHECK(g != NULL);
    FP_CHECK_STR(err, "");
    FP_CHECK_STR(site_at(g, 0.5, 0.5), "yard");
    geofence_free(g);

    FP_CHECK_INT(ftruncate(fd, 0), 0);
    FP_CHECK_INT(pwrite(fd, bad, strlen(bad), 0), strlen(bad));
    g = geofence_load(path, err, sizeof(err));
    FP_CHECK(g == NULL);
    snprintf(expected, sizeof(expected),
             "%s: features[0] (id \"yard\"): geometry.coordinates[0]: ring is not closed (its "
             "last position must equal its first)",
             path);
    FP_CHECK_STR(err, expected);
    close(fd);
    unlink(path);
}

/* The centre of a site is the middle of the box around all its polygons, which the enricher
 * geocodes once for every machine on the site. */
FP_TEST(geofence_site_center)
{
    static const char json[] =
        "{\"type\":\"FeatureCollection\",\"features\":["
        "{\"type\":\"Feature\",\"properties\":{\"id\":\"a\",\"name\":\"A\"},\"geometry\":"
        "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[10,50],[11,50],[11,51],[10,51],[10,50]]],"
        "[[[12,52],[13,52],[13,53],[12,53],[12,52]]]]}},"
        "{\"type\":\"Feature\",\"properties\":{\"id\":\"b\",\"name\":\"B\"},\"geometry\":"
        "{\"type\":\"Polygon\",\"coordinates\":[[[-71,-34],[-70,-34],[-70,-33],[-71,-33],"
        "[-71,-34]]]}}]}";
    char err[256];
    geofence_set *g = geofence_parse(json, sizeof(json) - 1, err, sizeof(err));
    const geofence_site *a, *b;

    FP_CHECK(g != NULL);
    if (g == NULL)
        return;
    a = geofence_site_at(g, 0);
    b = geofence_site_at(g, 1);
    FP_CHECK(a->center_lon > 11.5 - 1e-9 && a->center_lon < 11.5 + 1e-9);
    FP_CHECK(a->center_lat > 51.5 - 1e-9 && a->center_lat < 51.5 + 1e-9);
    FP_CHECK(b->center_lon > -70.5 - 1e-9 && b->center_lon < -70.5 + 1e-9);
    FP_CHECK(b->center_lat > -33.5 - 1e-9 && b->center_lat < -33.5 + 1e-9);
    geofence_free(g);
}
