#include "common/fp_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

int fp_file_write_atomic(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX];
    const char *p = data;
    int fd, saved;
    size_t off = 0;
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);

    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            goto err;
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto err;
    if (close(fd) != 0) {
        fd = -1;
        goto err;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto err;
    return 0;
err:
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}
