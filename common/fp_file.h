/* fp_file: files other processes read while they are being replaced (port, bootstrap and
 * state files of the local tools). */
#ifndef FP_FILE_H
#define FP_FILE_H

#include <stddef.h>

/* Writes len bytes to path atomically: path.tmp is written, flushed to disk and renamed over
 * path, so a reader sees the old content or the whole new one, never a part. Returns 0, or -1
 * with errno set (path.tmp is removed on failure). */
int fp_file_write_atomic(const char *path, const void *data, size_t len);

#endif
