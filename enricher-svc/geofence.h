/* geofence: local site polygons for enricher-svc. A GeoJSON FeatureCollection of Polygon and
 * MultiPolygon features (RFC 7946) becomes an immutable set that answers "which site contains
 * this position?" in a few hundred nanoseconds, for thousands of sites.
 *
 * Coordinates are planar longitude/latitude in degrees. Polygons that cross the antimeridian are
 * not supported: an edge spanning more than 180 degrees of longitude is rejected at parse time
 * (split such a site into two polygons, one on each side, as RFC 7946 section 3.1.9 advises).
 *
 * Limits on input, each refused with a clear message: at most GEOFENCE_MAX_FEATURES
 * features, GEOFENCE_MAX_VERTICES positions in all, GEOFENCE_MAX_FILE bytes of file,
 * GEOFENCE_MAX_ID bytes of id and GEOFENCE_MAX_NAME bytes of name. */
#ifndef GEOFENCE_H
#define GEOFENCE_H

#include <stddef.h>

#define GEOFENCE_MAX_FEATURES 100000
#define GEOFENCE_MAX_VERTICES 1000000
#define GEOFENCE_MAX_FILE     (256u * 1024u * 1024u)
#define GEOFENCE_MAX_ID       256
#define GEOFENCE_MAX_NAME     1024

/* A site: its id (a string, or an integer property written in decimal) and its name. Both
 * strings are owned by the set and live as long as it does. */
typedef struct geofence_site {
    const char *id;
    const char *name;
    double center_lat, center_lon; /* the middle of the site's bounding box */
} geofence_site;

typedef struct geofence_set geofence_set;

/* Parses a GeoJSON FeatureCollection (RFC 7946) of Polygon and MultiPolygon features whose
 * properties carry "id" (a non-empty string, or an integer) and "name" (a string). Ids must be
 * unique. Every ring must be closed (its first and last positions equal) and hold at least four
 * positions; longitudes must lie in [-180, 180] and latitudes in [-90, 90]. Holes are taken as
 * given: that a hole lies inside its outer ring is not checked.
 *
 * The input (len bytes, not necessarily NUL-terminated) is only read. Returns a new set that the
 * caller owns and releases with geofence_free. On any error returns NULL and writes a
 * message into err (when err_size > 0) that names the feature and what is wrong with it, e.g.
 * `features[3] (id "depot-7"): geometry.coordinates[0]: ring is not closed`; no partial set is
 * ever returned. */
geofence_set *geofence_parse(const char *json, size_t len, char *err, size_t err_size);

/* Reads the file at path and parses it as geofence_parse does. Returns NULL with a message
 * in err when the file cannot be read, is larger than GEOFENCE_MAX_FILE, or does not
 * parse. */
geofence_set *geofence_load(const char *path, char *err, size_t err_size);

/* Releases a set and every string it owns. Accepts NULL. */
void geofence_free(geofence_set *g);

/* The number of sites (features) in the set; 0 for NULL. This function can't fail. */
size_t geofence_count(const geofence_set *g);

/* The site at index i in file order, or NULL when i is out of range. The pointer is owned by
 * the set. */
const geofence_site *geofence_site_at(const geofence_set *g, size_t i);

/* The site containing (lat, lon), or NULL when none does (or the position is not a number, or g
 * is NULL). A position on an edge or a vertex, within 1e-12 degrees, counts as inside; a
 * position strictly inside a hole is outside that polygon, while one on the hole's edge is
 * inside. When sites overlap, the one with the smallest area wins (areas are spherical,
 * compared in whole square metres); on a tie, the one first in the file wins. The returned
 * pointer is owned by the set. The set is never modified after parsing, so any number of
 * threads may call this at once. */
const geofence_site *geofence_find(const geofence_set *g, double lat, double lon);

#endif
