/* geofence: site polygons → the site containing a position, through a uniform grid.
 *
 * Layout. Every position of every ring lives in one array of (lon, lat) pairs; a ring is a range
 * of that array, a polygon a range of rings (its outer ring first, then its holes), and each
 * polygon knows its site. Polygons are stored in the order in which they win: by the area of
 * their site, smallest first, then by file order. The grid covers the bounding box of all
 * polygons; each cell lists, in that same order, the polygons whose bounding box (widened by the
 * edge tolerance) meets the cell. A lookup therefore visits one cell, tests each candidate's box
 * before its rings, and stops at the first polygon that contains the position: no other candidate
 * could win over it.
 *
 * Memory. The set holds the positions (16 bytes each), the rings and polygons, the strings, and
 * the grid. The grid is sized to about CELLS_PER_POLYGON cells per polygon, and is coarsened until
 * its cell lists hold at most ENTRIES_PER_POLYGON entries per polygon plus two per position (at
 * 4 bytes an entry, no more than half of what the positions take), so a few huge polygons cannot
 * make it quadratic. While parsing, cJSON's tree of the document is held as well (about
 * 200 bytes per position); it is released before geofence_parse returns. */
#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fp_buf.h"
#include "common/fp_json.h"
#include "enricher-svc/geofence.h"

/* A position this close to an edge, in degrees (about 0.1 µm), is on it. */
#define EDGE_EPS            1e-12
#define EARTH_RADIUS_M      6378137.0
#define DEG_TO_RAD          (3.14159265358979323846 / 180.0)
#define CELLS_PER_POLYGON   4
#define ENTRIES_PER_POLYGON 16
#define MAX_CELLS           (1u << 22)
/* Integer ids are exact in a double up to 2^53. */
#define MAX_INT_ID 9007199254740992.0

typedef struct gf_ring {
    uint32_t first;                /* index of the first position in pts */
    uint32_t count;                /* positions, the closing one included */
    double minx, miny, maxx, maxy; /* widened by EDGE_EPS */
} gf_ring;

typedef struct gf_polygon {
    double minx, miny, maxx, maxy; /* the outer ring's box, widened by EDGE_EPS */
    uint32_t ring_first;
    uint32_t ring_count;
    uint32_t site;
} gf_polygon;

struct geofence_set {
    geofence_site *sites; /* in file order */
    size_t nsites;
    char *strings; /* every id and name, each NUL-terminated */
    double *pts;   /* lon, lat pairs */
    size_t npts;
    gf_ring *rings;
    gf_polygon *polys; /* in winning order */
    size_t npolys;
    /* The grid: nx * ny cells over [gx0, gx1] x [gy0, gy1], sx and sy cells per degree. Cell
     * c = iy * nx + ix lists polys[cell_items[k]] for k in [cell_start[c], cell_start[c + 1]). */
    double gx0, gy0, gx1, gy1;
    double sx, sy;
    uint32_t nx, ny;
    uint32_t *cell_start;
    uint32_t *cell_items;
};

/* What the parser knows of a site before the set exists: offsets into the string buffer. */
typedef struct site_draft {
    size_t id_off;
    size_t name_off;
    double area; /* square metres */
} site_draft;

typedef struct builder {
    char *err;
    size_t err_size;
    size_t feature;  /* the feature being parsed, or SIZE_MAX outside any */
    const char *fid; /* its id for messages, once known */
    char fid_buf[32];
    fp_buf strings;
    site_draft *sites;
    size_t nsites;
    double *pts;
    size_t npts, cap_pts;
    gf_ring *rings;
    size_t nrings, cap_rings;
    gf_polygon *polys;
    size_t npolys, cap_polys;
} builder;

enum { RING_OUTSIDE, RING_INSIDE, RING_BOUNDARY };

static int fail(builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "features[i] (id "x"): " and the message into the caller's error buffer. Always
 * returns -1 so that callers can `return fail(...)`. */
static int fail(builder *b, const char *fmt, ...)
{
    va_list ap;
    size_t used = 0;
    int w = 0;

    if (b->err == NULL || b->err_size == 0)
        return -1;
    if (b->feature != SIZE_MAX && b->fid != NULL)
        w = snprintf(b->err, b->err_size, "features[%zu] (id \"%.64s\"): ", b->feature, b->fid);
    else if (b->feature != SIZE_MAX)
        w = snprintf(b->err, b->err_size, "features[%zu]: ", b->feature);
    used = w > 0 ? (size_t)w : 0;
    if (used >= b->err_size)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->err + used, b->err_size - used, fmt, ap);
    va_end(ap);
    return -1;
}

/* Grows *p to hold at least `need` elements of `size` bytes. Returns 0, or -1 on out of memory
 * (then *p is unchanged). */
static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    size_t n = *cap != 0 ? *cap : 16;
    void *q;

    if (need <= *cap)
        return 0;
    while (n < need)
        n *= 2;
    q = realloc(*p, n * size);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

static const char *json_kind(const cJSON *item)
{
    if (item == NULL)
        return "missing";
    if (cJSON_IsObject(item))
        return "an object";
    if (cJSON_IsArray(item))
        return "an array";
    if (cJSON_IsString(item))
        return "a string";
    if (cJSON_IsNumber(item))
        return "a number";
    if (cJSON_IsBool(item))
        return "a boolean";
    return "null";
}

static bool is_string(const cJSON *item, const char *value)
{
    return cJSON_IsString(item) && item->valuestring != NULL &&
           strcmp(item->valuestring, value) == 0;
}

static bool is_finite_number(const cJSON *item)
{
    return cJSON_IsNumber(item) && isfinite(item->valuedouble);
}

/* The area of a ring on a sphere of the Earth's equatorial radius, in square metres
 * (Chamberlain and Duquette, "Some algorithms for polygons on a sphere", 2007). Good enough to
 * rank sites by size, which is all it is used for. */
static double ring_area(const double *pts, uint32_t count)
{
    double sum = 0;

    for (uint32_t i = 0; i + 1 < count; i++) {
        double lon1 = pts[2 * i] * DEG_TO_RAD, lat1 = pts[2 * i + 1] * DEG_TO_RAD;
        double lon2 = pts[2 * i + 2] * DEG_TO_RAD, lat2 = pts[2 * i + 3] * DEG_TO_RAD;

        sum += (lon2 - lon1) * (2 + sin(lat1) + sin(lat2));
    }
    return fabs(sum * EARTH_RADIUS_M * EARTH_RADIUS_M / 2);
}

/* Parses one linear ring at `where` (e.g. "geometry.coordinates[0]") and appends it. Returns 0
 * or -1 with the error written. */
static int parse_ring(builder *b, const cJSON *ring, const char *where, double *area)
{
    const cJSON *pos;
    size_t n = 0, first = b->npts;
    gf_ring r;

    if (!cJSON_IsArray(ring))
        return fail(b, "%s: a ring must be an array of positions, not %s", where, json_kind(ring));
    cJSON_ArrayForEach(pos, ring)
    {
        const cJSON *c;
        double lon, lat;
        size_t m = 0;

        if (b->npts >= GEOFENCE_MAX_VERTICES)
            return fail(b, "%s: more than %d positions in the file", where, GEOFENCE_MAX_VERTICES);
        if (!cJSON_IsArray(pos))
            return fail(b, "%s[%zu]: a position must be an array [longitude, latitude], not %s",
                        where, n, json_kind(pos));
        cJSON_ArrayForEach(c, pos)
        {
            if (!is_finite_number(c))
                return fail(b, "%s[%zu]: coordinate %zu is %s, not a finite number", where, n, m,
                            json_kind(c));
            m++;
        }
        if (m < 2 || m > 3)
            return fail(b, "%s[%zu]: a position holds %zu numbers, expected 2 (or 3 with altitude)",
                        where, n, m);
        lon = pos->child->valuedouble;
        lat = pos->child->next->valuedouble;
        if (lon < -180 || lon > 180)
            return fail(b, "%s[%zu]: longitude %.10g is out of range [-180, 180]", where, n, lon);
        if (lat < -90 || lat > 90)
            return fail(b, "%s[%zu]: latitude %.10g is out of range [-90, 90]", where, n, lat);
        if (n > 0 && fabs(lon - b->pts[2 * (b->npts - 1)]) > 180)
            return fail(b,
                        "%s[%zu]: edge spans more than 180 degrees of longitude (polygons across "
                        "the antimeridian are not supported; split the site at it)",
                        where, n);
        if (grow((void **)&b->pts, &b->cap_pts, 2 * (b->npts + 1), sizeof(double)) < 0)
            return fail(b, "out of memory");
        b->pts[2 * b->npts] = lon;
        b->pts[2 * b->npts + 1] = lat;
        b->npts++;
        n++;
    }
    if (n < 4)
        return fail(b, "%s: a ring needs at least 4 positions, this one has %zu", where, n);
    if (b->pts[2 * first] != b->pts[2 * (b->npts - 1)] ||
        b->pts[2 * first + 1] != b->pts[2 * (b->npts - 1) + 1])
        return fail(b, "%s: ring is not closed (its last position must equal its first)", where);

    r.first = (uint32_t)first;
    r.count = (uint32_t)n;
    r.minx = r.maxx = b->pts[2 * first];
    r.miny = r.maxy = b->pts[2 * first + 1];
    for (size_t i = first + 1; i < b->npts; i++) {
        double x = b->pts[2 * i], y = b->pts[2 * i + 1];

        r.minx = x < r.minx ? x : r.minx;
        r.maxx = x > r.maxx ? x : r.maxx;
        r.miny = y < r.miny ? y : r.miny;
        r.maxy = y > r.maxy ? y : r.maxy;
    }
    r.minx -= EDGE_EPS;
    r.miny -= EDGE_EPS;
    r.maxx += EDGE_EPS;
    r.maxy += EDGE_EPS;
    *area = ring_area(b->pts + 2 * first, r.count);
    if (grow((void **)&b->rings, &b->cap_rings, b->nrings + 1, sizeof(*b->rings)) < 0)
        return fail(b, "out of memory");
    b->rings[b->nrings++] = r;
    return 0;
}

/* Parses one polygon (an array of rings, the outer one first) at `where` and appends it to
 * site `site`, adding its area (outer ring less holes) to *area. Returns 0 or -1. */
static int parse_polygon(builder *b, const cJSON *rings, const char *where, uint32_t site,
                         double *area)
{
    const cJSON *ring;
    gf_polygon p;
    size_t k = 0;
    double outer = 0, holes = 0;

    if (!cJSON_IsArray(rings))
        return fail(b, "%s: a polygon must be an array of rings, not %s", where, json_kind(rings));
    p.ring_first = (uint32_t)b->nrings;
    cJSON_ArrayForEach(ring, rings)
    {
        char at[96];
        double a = 0;

        snprintf(at, sizeof(at), "%s[%zu]", where, k);
        if (parse_ring(b, ring, at, &a) < 0)
            return -1;
        if (k == 0)
            outer = a;
        else
            holes += a;
        k++;
    }
    if (k == 0)
        return fail(b, "%s: a polygon needs at least one ring", where);
    p.ring_count = (uint32_t)k;
    p.site = site;
    p.minx = b->rings[p.ring_first].minx;
    p.miny = b->rings[p.ring_first].miny;
    p.maxx = b->rings[p.ring_first].maxx;
    p.maxy = b->rings[p.ring_first].maxy;
    if (grow((void **)&b->polys, &b->cap_polys, b->npolys + 1, sizeof(*b->polys)) < 0)
        return fail(b, "out of memory");
    b->polys[b->npolys++] = p;
    *area += outer > holes ? outer - holes : 0;
    return 0;
}

/* Appends a NUL-terminated copy of s to the string buffer and stores its offset. */
static int put_string(builder *b, const char *s, size_t len, size_t *off)
{
    *off = b->strings.len;
    if (fp_buf_append(&b->strings, s, len) < 0 || fp_buf_putc(&b->strings, '\0') < 0)
        return fail(b, "out of memory");
    return 0;
}

/* Reads "id" and "name" from a feature's properties. */
static int parse_properties(builder *b, const cJSON *feature, site_draft *d)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(feature, "properties");
    const cJSON *id, *name;
    size_t len;

    if (!cJSON_IsObject(props))
        return fail(b, "\"properties\" is %s; a site needs an object with \"id\" and \"name\"",
                    json_kind(props));
    id = cJSON_GetObjectItemCaseSensitive(props, "id");
    if (cJSON_IsString(id) && id->valuestring != NULL) {
        len = strlen(id->valuestring);
        if (len == 0)
            return fail(b, "properties.id is an empty string");
        if (len > GEOFENCE_MAX_ID)
            return fail(b, "properties.id is longer than %d bytes", GEOFENCE_MAX_ID);
        b->fid = id->valuestring;
    } else if (is_finite_number(id) && id->valuedouble == floor(id->valuedouble) &&
               fabs(id->valuedouble) <= MAX_INT_ID) {
        snprintf(b->fid_buf, sizeof(b->fid_buf), "%" PRId64, (int64_t)id->valuedouble);
        b->fid = b->fid_buf;
        len = strlen(b->fid);
    } else if (id == NULL) {
        return fail(b, "properties has no \"id\"");
    } else {
        return fail(b, "properties.id must be a string or an integer, not %s",
                    cJSON_IsNumber(id) ? "a fractional or huge number" : json_kind(id));
    }
    if (put_string(b, b->fid, len, &d->id_off) < 0)
        return -1;

    name = cJSON_GetObjectItemCaseSensitive(props, "name");
    if (name == NULL)
        return fail(b, "properties has no \"name\"");
    if (!cJSON_IsString(name) || name->valuestring == NULL)
        return fail(b, "properties.name must be a string, not %s", json_kind(name));
    len = strlen(name->valuestring);
    if (len > GEOFENCE_MAX_NAME)
        return fail(b, "properties.name is longer than %d bytes", GEOFENCE_MAX_NAME);
    return put_string(b, name->valuestring, len, &d->name_off);
}

/* Parses features[index] into site `index`. Returns 0 or -1 with the error written. */
static int parse_feature(builder *b, const cJSON *feature, size_t index)
{
    const cJSON *type, *geometry, *gtype, *coords;
    site_draft *d = &b->sites[index];

    b->feature = index;
    b->fid = NULL;
    d->area = 0;
    if (!cJSON_IsObject(feature))
        return fail(b, "a feature must be an object, not %s", json_kind(feature));
    type = cJSON_GetObjectItemCaseSensitive(feature, "type");
    if (!is_string(type, "Feature"))
        return fail(b, "\"type\" must be \"Feature\"");
    if (parse_properties(b, feature, d) < 0)
        return -1;

    geometry = cJSON_GetObjectItemCaseSensitive(feature, "geometry");
    if (geometry == NULL || cJSON_IsNull(geometry))
        return fail(b, "has no geometry; a site needs a Polygon or a MultiPolygon");
    if (!cJSON_IsObject(geometry))
        return fail(b, "geometry must be an object, not %s", json_kind(geometry));
    gtype = cJSON_GetObjectItemCaseSensitive(geometry, "type");
    if (!cJSON_IsString(gtype) || gtype->valuestring == NULL)
        return fail(b, "geometry.type is %s, not a string", json_kind(gtype));
    coords = cJSON_GetObjectItemCaseSensitive(geometry, "coordinates");
    if (strcmp(gtype->valuestring, "Polygon") == 0)
        return parse_polygon(b, coords, "geometry.coordinates", (uint32_t)index, &d->area);
    if (strcmp(gtype->valuestring, "MultiPolygon") == 0) {
        const cJSON *poly;
        size_t k = 0;

        if (!cJSON_IsArray(coords))
            return fail(b, "geometry.coordinates must be an array of polygons, not %s",
                        json_kind(coords));
        cJSON_ArrayForEach(poly, coords)
        {
            char at[64];

            snprintf(at, sizeof(at), "geometry.coordinates[%zu]", k++);
            if (parse_polygon(b, poly, at, (uint32_t)index, &d->area) < 0)
                return -1;
        }
        if (k == 0)
            return fail(b, "geometry.coordinates: a MultiPolygon needs at least one polygon");
        return 0;
    }
    return fail(b,
                "unsupported geometry type \"%.32s\" (a site file holds Polygon and MultiPolygon "
                "features only)",
                gtype->valuestring);
}

typedef struct rank_key {
    uint64_t key;
    uint32_t index;
} rank_key;

static int rank_key_cmp(const void *pa, const void *pb)
{
    const rank_key *a = pa, *b = pb;

    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Puts the polygons in winning order: by site area in whole square metres (so that float noise
 * between equal shapes does not break ties), then by file order. Returns 0 or -1 on out of
 * memory. */
static int order_polygons(geofence_set *g, const site_draft *drafts)
{
    rank_key *keys = malloc((g->nsites > g->npolys ? g->nsites : g->npolys) * sizeof(*keys) + 1);
    uint32_t *rank = malloc(g->nsites * sizeof(*rank) + 1);
    gf_polygon *sorted = malloc(g->npolys * sizeof(*sorted) + 1);
    int rc = -1;

    if (keys == NULL || rank == NULL || sorted == NULL)
        goto done;
    for (size_t i = 0; i < g->nsites; i++) {
        double a = drafts[i].area;

        keys[i].key = a < 1e18 ? (uint64_t)(a + 0.5) : (uint64_t)1e18;
        keys[i].index = (uint32_t)i;
    }
    qsort(keys, g->nsites, sizeof(*keys), rank_key_cmp);
    for (size_t i = 0; i < g->nsites; i++)
        rank[keys[i].index] = (uint32_t)i;
    for (size_t i = 0; i < g->npolys; i++) {
        keys[i].key = rank[g->polys[i].site];
        keys[i].index = (uint32_t)i;
    }
    qsort(keys, g->npolys, sizeof(*keys), rank_key_cmp);
    for (size_t i = 0; i < g->npolys; i++)
        sorted[i] = g->polys[keys[i].index];
    /* Ownership of the sorted copy passes to the set. */
    free(g->polys);
    g->polys = sorted;
    sorted = NULL;
    rc = 0;
done:
    free(sorted);
    free(rank);
    free(keys);
    return rc;
}

/* The grid column and row of a position inside the grid's box. The same functions place the
 * polygons' boxes, and both are monotonic, so a position inside a polygon's box always lands in
 * a cell that lists the polygon. */
static uint32_t cell_x(const geofence_set *g, double x)
{
    double t = (x - g->gx0) * g->sx;

    return t >= (double)g->nx ? g->nx - 1 : (uint32_t)t;
}

static uint32_t cell_y(const geofence_set *g, double y)
{
    double t = (y - g->gy0) * g->sy;

    return t >= (double)g->ny ? g->ny - 1 : (uint32_t)t;
}

/* Counts the cell-list entries that the current grid size would need. */
static uint64_t grid_entries(const geofence_set *g)
{
    uint64_t total = 0;

    for (size_t i = 0; i < g->npolys; i++) {
        const gf_polygon *p = &g->polys[i];

        total += (uint64_t)(cell_x(g, p->maxx) - cell_x(g, p->minx) + 1) *
                 (cell_y(g, p->maxy) - cell_y(g, p->miny) + 1);
    }
    return total;
}

/* Sizes and fills the grid. Returns 0 or -1 on out of memory. */
static int build_grid(geofence_set *g)
{
    double w, h, target, nxd;
    uint64_t budget = (uint64_t)ENTRIES_PER_POLYGON * g->npolys + 2 * (uint64_t)g->npts, total;
    size_t ncells;
    uint32_t *fill;

    if (g->npolys == 0)
        return 0;
    g->gx0 = g->polys[0].minx;
    g->gy0 = g->polys[0].miny;
    g->gx1 = g->polys[0].maxx;
    g->gy1 = g->polys[0].maxy;
    for (size_t i = 1; i < g->npolys; i++) {
        const gf_polygon *p = &g->polys[i];

        g->gx0 = p->minx < g->gx0 ? p->minx : g->gx0;
        g->gy0 = p->miny < g->gy0 ? p->miny : g->gy0;
        g->gx1 = p->maxx > g->gx1 ? p->maxx : g->gx1;
        g->gy1 = p->maxy > g->gy1 ? p->maxy : g->gy1;
    }
    /* Every box was widened by EDGE_EPS, so neither side is zero. Cells follow the box's
     * aspect ratio. */
    w = g->gx1 - g->gx0;
    h = g->gy1 - g->gy0;
    target = (double)CELLS_PER_POLYGON * (double)g->npolys;
    target = target < MAX_CELLS ? target : MAX_CELLS;
    nxd = ceil(sqrt(target * w / h));
    nxd = nxd < 1 ? 1 : nxd > target ? target : nxd;
    g->nx = (uint32_t)nxd;
    g->ny = (uint32_t)fmax(1, ceil(target / nxd));
    for (;;) {
        g->sx = g->nx / w;
        g->sy = g->ny / h;
        total = grid_entries(g);
        if (total <= budget || (g->nx == 1 && g->ny == 1))
            break;
        g->nx = g->nx > 1 ? g->nx / 2 : 1;
        g->ny = g->ny > 1 ? g->ny / 2 : 1;
    }
    ncells = (size_t)g->nx * g->ny;
    g->cell_start = calloc(ncells + 1, sizeof(*g->cell_start));
    g->cell_items = malloc(total * sizeof(*g->cell_items) + 1);
    fill = malloc(ncells * sizeof(*fill));
    if (g->cell_start == NULL || g->cell_items == NULL || fill == NULL) {
        free(fill);
        return -1;
    }
    for (size_t i = 0; i < g->npolys; i++) {
        const gf_polygon *p = &g->polys[i];

        for (uint32_t iy = cell_y(g, p->miny); iy <= cell_y(g, p->maxy); iy++)
            for (uint32_t ix = cell_x(g, p->minx); ix <= cell_x(g, p->maxx); ix++)
                g->cell_start[(size_t)iy * g->nx + ix + 1]++;
    }
    for (size_t c = 0; c < ncells; c++) {
        g->cell_start[c + 1] += g->cell_start[c];
        fill[c] = g->cell_start[c];
    }
    /* Polygons go in in winning order, so every cell's list is in winning order too. */
    for (size_t i = 0; i < g->npolys; i++) {
        const gf_polygon *p = &g->polys[i];

        for (uint32_t iy = cell_y(g, p->miny); iy <= cell_y(g, p->maxy); iy++)
            for (uint32_t ix = cell_x(g, p->minx); ix <= cell_x(g, p->maxx); ix++)
                g->cell_items[fill[(size_t)iy * g->nx + ix]++] = (uint32_t)i;
    }
    free(fill);
    return 0;
}

typedef struct id_pair {
    const char *id;
    uint32_t index;
} id_pair;

static int id_pair_cmp(const void *pa, const void *pb)
{
    const id_pair *a = pa, *b = pb;
    int c = strcmp(a->id, b->id);

    if (c != 0)
        return c;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Reports the duplicate id that appears earliest in the file. Returns 0 when ids are unique,
 * -1 with the error written when they are not or on out of memory. */
static int check_unique_ids(builder *b, const geofence_set *g)
{
    id_pair *pairs = malloc(g->nsites * sizeof(*pairs) + 1);
    size_t first = SIZE_MAX, dup = SIZE_MAX;

    if (pairs == NULL)
        return fail(b, "out of memory");
    for (size_t i = 0; i < g->nsites; i++) {
        pairs[i].id = g->sites[i].id;
        pairs[i].index = (uint32_t)i;
    }
    qsort(pairs, g->nsites, sizeof(*pairs), id_pair_cmp);
    /* Within a run of equal ids the indices ascend: the run's first element is where the id is
     * first used and its second is the earliest duplicate. */
    for (size_t i = 1; i < g->nsites; i++) {
        bool run_start = i == 1 || strcmp(pairs[i - 2].id, pairs[i - 1].id) != 0;

        if (run_start && strcmp(pairs[i - 1].id, pairs[i].id) == 0 && pairs[i].index < dup) {
            first = pairs[i - 1].index;
            dup = pairs[i].index;
        }
    }
    free(pairs);
    if (dup == SIZE_MAX)
        return 0;
    b->feature = dup;
    b->fid = g->sites[dup].id;
    return fail(b, "duplicate id (first used by features[%zu])", first);
}

/* Builds the set from a finished builder, taking over its arrays. Returns NULL with the error
 * written on out of memory or duplicate ids; the builder still owns whatever was not taken. */
static geofence_set *assemble(builder *b)
{
    geofence_set *g = calloc(1, sizeof(*g));
    double *pts;

    if (g == NULL) {
        fail(b, "out of memory");
        return NULL;
    }
    g->nsites = b->nsites;
    g->sites = calloc(b->nsites + 1, sizeof(*g->sites));
    if (g->sites == NULL)
        goto oom;
    /* Ownership of the strings, positions, rings and polygons passes to the set. */
    g->strings = b->strings.data;
    b->strings.data = NULL;
    b->strings.len = b->strings.cap = 0;
    for (size_t i = 0; i < b->nsites; i++) {
        g->sites[i].id = g->strings + b->sites[i].id_off;
        g->sites[i].name = g->strings + b->sites[i].name_off;
    }
    /* The position array is the big one: give back what doubling left over. */
    pts = realloc(b->pts, (2 * b->npts + 1) * sizeof(*pts));
    g->pts = pts != NULL ? pts : b->pts;
    g->npts = b->npts;
    b->pts = NULL;
    g->rings = b->rings;
    b->rings = NULL;
    g->polys = b->polys;
    g->npolys = b->npolys;
    b->polys = NULL;

    b->feature = SIZE_MAX;
    if (check_unique_ids(b, g) < 0) {
        geofence_free(g);
        return NULL;
    }
    /* Each site's centre: the middle of the box around its polygons (the boxes are widened by
     * EDGE_EPS on both sides, which cancels out). One pass over the polygons. */
    {
        double *box = malloc(4 * (g->nsites + 1) * sizeof(*box));

        if (box == NULL)
            goto oom;
        for (size_t i = 0; i < g->nsites; i++) {
            box[4 * i] = box[4 * i + 1] = HUGE_VAL;
            box[4 * i + 2] = box[4 * i + 3] = -HUGE_VAL;
        }
        for (size_t k = 0; k < g->npolys; k++) {
            const gf_polygon *p = &g->polys[k];
            double *bx = &box[4 * (size_t)p->site];

            bx[0] = fmin(bx[0], p->minx);
            bx[1] = fmin(bx[1], p->miny);
            bx[2] = fmax(bx[2], p->maxx);
            bx[3] = fmax(bx[3], p->maxy);
        }
        for (size_t i = 0; i < g->nsites; i++) {
            g->sites[i].center_lon = (box[4 * i] + box[4 * i + 2]) / 2;
            g->sites[i].center_lat = (box[4 * i + 1] + box[4 * i + 3]) / 2;
        }
        free(box);
    }
    if (order_polygons(g, b->sites) < 0 || build_grid(g) < 0)
        goto oom;
    return g;
oom:
    b->feature = SIZE_MAX;
    fail(b, "out of memory");
    geofence_free(g);
    return NULL;
}

static bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

geofence_set *geofence_parse(const char *json, size_t len, char *err, size_t err_size)
{
    builder b = {.err = err, .err_size = err_size, .feature = SIZE_MAX};
    cJSON *root = NULL;
    const cJSON *type, *features, *f;
    const char *end = NULL;
    geofence_set *g = NULL;
    size_t n = 0, bad = 0;

    if (err != NULL && err_size > 0)
        err[0] = '\0';
    if (json == NULL || len == 0) {
        fail(&b, "not JSON: the input is empty");
        goto done;
    }
    if (!fp_json_utf8_valid(json, len, &bad)) {
        fail(&b, "not JSON: invalid UTF-8 at byte %zu", bad);
        goto done;
    }
    root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (root == NULL) {
        size_t at = end != NULL && end >= json && end <= json + len ? (size_t)(end - json) : 0;

        fail(&b, "not JSON: syntax error at byte %zu", at);
        goto done;
    }
    for (const char *p = end; p != NULL && p < json + len; p++) {
        if (!is_json_space(*p)) {
            fail(&b, "not JSON: trailing data at byte %zu", (size_t)(p - json));
            goto done;
        }
    }
    if (!cJSON_IsObject(root)) {
        fail(&b, "not a GeoJSON FeatureCollection: the document is %s, not an object",
             json_kind(root));
        goto done;
    }
    type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!is_string(type, "FeatureCollection")) {
        if (cJSON_IsString(type) && type->valuestring != NULL)
            fail(&b, "not a GeoJSON FeatureCollection: \"type\" is \"%.32s\"", type->valuestring);
        else
            fail(&b, "not a GeoJSON FeatureCollection: \"type\" is %s", json_kind(type));
        goto done;
    }
    features = cJSON_GetObjectItemCaseSensitive(root, "features");
    if (!cJSON_IsArray(features)) {
        fail(&b, "FeatureCollection: \"features\" is %s, not an array", json_kind(features));
        goto done;
    }
    cJSON_ArrayForEach(f, features)
    {
        if (++n > GEOFENCE_MAX_FEATURES) {
            fail(&b, "FeatureCollection: more than %d features", GEOFENCE_MAX_FEATURES);
            goto done;
        }
    }
    b.sites = calloc(n + 1, sizeof(*b.sites));
    if (b.sites == NULL) {
        fail(&b, "out of memory");
        goto done;
    }
    b.nsites = n;
    n = 0;
    cJSON_ArrayForEach(f, features)
    {
        if (parse_feature(&b, f, n++) < 0)
            goto done;
    }
    /* The tree is no longer needed: release it before the index is built. */
    cJSON_Delete(root);
    root = NULL;
    g = assemble(&b);
done:
    cJSON_Delete(root);
    fp_buf_free(&b.strings);
    free(b.sites);
    free(b.pts);
    free(b.rings);
    free(b.polys);
    return g;
}

/* Reads all of f into a new buffer that the caller frees. Returns 0, -1 on a read error, -2
 * when there are more than GEOFENCE_MAX_FILE bytes, or -3 on out of memory; on failure
 * *data is left NULL. */
static int read_all(FILE *f, char **data, size_t *len)
{
    const size_t limit = GEOFENCE_MAX_FILE;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = 0;

    for (;;) {
        size_t got;

        if (n == cap) {
            size_t want = cap == 0 ? 65536 : 2 * cap;
            char *q;

            if (cap > limit) {
                rc = -2;
                break;
            }
            /* One byte past the limit tells a file at the limit from a larger one. */
            want = want > limit + 1 ? limit + 1 : want;
            q = realloc(buf, want);
            if (q == NULL) {
                rc = -3;
                break;
            }
            buf = q;
            cap = want;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (rc == 0 && ferror(f))
        rc = -1;
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = n;
    return 0;
}

geofence_set *geofence_load(const char *path, char *err, size_t err_size)
{
    char dummy[1];
    FILE *f;
    char *data = NULL;
    size_t len = 0, used;
    geofence_set *g;
    int rc, w;

    /* Without a caller's buffer, messages go to a one-byte one and are lost. */
    if (err == NULL || err_size == 0) {
        err = dummy;
        err_size = sizeof(dummy);
    }
    err[0] = '\0';
    if (path == NULL) {
        snprintf(err, err_size, "no geofence file given");
        return NULL;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        char why[128];

        if (strerror_r(e, why, sizeof(why)) != 0)
            snprintf(why, sizeof(why), "error %d", e);
        snprintf(err, err_size, "%s: cannot open: %s", path, why);
        return NULL;
    }
    rc = read_all(f, &data, &len);
    fclose(f);
    if (rc == -1)
        snprintf(err, err_size, "%s: read error", path);
    else if (rc == -2)
        snprintf(err, err_size, "%s: larger than %u bytes", path, GEOFENCE_MAX_FILE);
    else if (rc == -3)
        snprintf(err, err_size, "%s: out of memory", path);
    if (rc < 0)
        return NULL;
    /* Parse errors read "path: features[3] (id ...": ...". */
    w = snprintf(err, err_size, "%s: ", path);
    used = w > 0 && (size_t)w < err_size ? (size_t)w : err_size - 1;
    g = geofence_parse(data, len, err + used, err_size - used);
    free(data);
    if (g != NULL)
        err[0] = '\0';
    return g;
}

void geofence_free(geofence_set *g)
{
    if (g == NULL)
        return;
    free(g->cell_items);
    free(g->cell_start);
    free(g->polys);
    free(g->rings);
    free(g->pts);
    free(g->strings);
    free(g->sites);
    free(g);
}

size_t geofence_count(const geofence_set *g)
{
    return g != NULL ? g->nsites : 0;
}

const geofence_site *geofence_site_at(const geofence_set *g, size_t i)
{
    return g != NULL && i < g->nsites ? &g->sites[i] : NULL;
}

/* Where (x, y) lies with respect to one ring: on it (within EDGE_EPS of an edge), inside it
 * (an odd number of edges crossed by a ray towards +x) or outside. */
static int ring_locate(const double *pts, uint32_t count, double x, double y)
{
    bool inside = false;

    for (uint32_t i = 0; i + 1 < count; i++) {
        double ax = pts[2 * i], ay = pts[2 * i + 1];
        double bx = pts[2 * i + 2], by = pts[2 * i + 3];
        double dx = bx - ax, dy = by - ay;

        /* On the edge: inside the segment's box and within EDGE_EPS of its line. A repeated
         * position (a zero-length edge) is a vertex. */
        if (x >= (ax < bx ? ax : bx) - EDGE_EPS && x <= (ax > bx ? ax : bx) + EDGE_EPS &&
            y >= (ay < by ? ay : by) - EDGE_EPS && y <= (ay > by ? ay : by) + EDGE_EPS) {
            double cross = dx * (y - ay) - dy * (x - ax);

            if (fabs(cross) <= EDGE_EPS * hypot(dx, dy))
                return RING_BOUNDARY;
        }
        /* Half-open in y so that a ray through a vertex counts it once. */
        if ((ay > y) != (by > y) && x < ax + (y - ay) * dx / dy)
            inside = !inside;
    }
    return inside ? RING_INSIDE : RING_OUTSIDE;
}

/* True when (x, y) is inside the polygon or on any of its rings (a hole's edge included). */
static bool polygon_contains(const geofence_set *g, const gf_polygon *p, double x, double y)
{
    const gf_ring *r = &g->rings[p->ring_first];
    int where = ring_locate(g->pts + 2 * (size_t)r->first, r->count, x, y);

    if (where != RING_INSIDE)
        return where == RING_BOUNDARY;
    for (uint32_t h = 1; h < p->ring_count; h++) {
        r = &g->rings[p->ring_first + h];
        if (x < r->minx || x > r->maxx || y < r->miny || y > r->maxy)
            continue;
        where = ring_locate(g->pts + 2 * (size_t)r->first, r->count, x, y);
        if (where == RING_BOUNDARY)
            return true;
        if (where == RING_INSIDE)
            return false;
    }
    return true;
}

const geofence_site *geofence_find(const geofence_set *g, double lat, double lon)
{
    size_t c;

    if (g == NULL || g->npolys == 0)
        return NULL;
    /* Written so that NaN falls out as well. */
    if (!(lon >= g->gx0 && lon <= g->gx1 && lat >= g->gy0 && lat <= g->gy1))
        return NULL;
    c = (size_t)cell_y(g, lat) * g->nx + cell_x(g, lon);
    for (uint32_t k = g->cell_start[c]; k < g->cell_start[c + 1]; k++) {
        const gf_polygon *p = &g->polys[g->cell_items[k]];

        if (lon < p->minx || lon > p->maxx || lat < p->miny || lat > p->maxy)
            continue;
        /* Cells list polygons in winning order: the first that contains the position wins. */
        if (polygon_contains(g, p, lon, lat))
            return &g->sites[p->site];
    }
    return NULL;
}
