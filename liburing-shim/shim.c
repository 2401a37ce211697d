/*
 * chronon's io_uring shim: exported, non-inline wrappers over liburing's inline helpers,
 * with only int, unsigned, int64 and pointer arguments so that every FFI (koffi, bun:ffi,
 * Deno.dlopen) can call them without struct layouts or varargs.
 *
 * Every call returns 0 (or a count) on success and -errno on failure: FFIs differ in how
 * they expose errno, return values do not.
 *
 * The caller owns the ring's memory (chronon_ring_size() bytes, from posix_memalign), so
 * no pointer ever has to travel back through an out-parameter.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <liburing.h>

#define CHRONON_SHIM_VERSION 2

struct chronon_ring {
  struct io_uring ring;
  int eventfd;
  unsigned entries;
};

/** ABI version of this shim; the JS side refuses a library with another one. */
int chronon_shim_version(void) { return CHRONON_SHIM_VERSION; }

/** Bytes the caller must allocate (8-byte aligned at least) for one ring. */
unsigned chronon_ring_size(void) { return (unsigned)sizeof(struct chronon_ring); }

/**
 * Sets up a ring of `entries` submission slots in `memory` and an eventfd that the kernel
 * signals on every completion, so a thread can wait for completions with a plain read().
 */
int chronon_ring_init(void *memory, unsigned entries) {
  struct chronon_ring *r = memory;
  memset(r, 0, sizeof(*r));
  r->eventfd = -1;
  int ret = io_uring_queue_init(entries, &r->ring, 0);
  if (ret < 0) return ret;
  int fd = eventfd(0, EFD_CLOEXEC);
  if (fd < 0) {
    ret = -errno;
    io_uring_queue_exit(&r->ring);
    return ret;
  }
  ret = io_uring_register_eventfd(&r->ring, fd);
  if (ret < 0) {
    close(fd);
    io_uring_queue_exit(&r->ring);
    return ret;
  }
  r->eventfd = fd;
  r->entries = entries;
  return 0;
}

/** The eventfd that counts completions (read 8 bytes to wait and reset it). */
int chronon_ring_eventfd(void *memory) { return ((struct chronon_ring *)memory)->eventfd; }

/** Submission slots still free before the next submit. */
unsigned chronon_ring_sq_space(void *memory) {
  return io_uring_sq_space_left(&((struct chronon_ring *)memory)->ring);
}

/** Tears down the ring and closes its eventfd. */
void chronon_ring_exit(void *memory) {
  struct chronon_ring *r = memory;
  if (r->eventfd >= 0) {
    io_uring_unregister_eventfd(&r->ring);
    close(r->eventfd);
    r->eventfd = -1;
  }
  io_uring_queue_exit(&r->ring);
}

static struct io_uring_sqe *next_sqe(struct chronon_ring *r) { return io_uring_get_sqe(&r->ring); }

static void finish_sqe(struct io_uring_sqe *sqe, unsigned user_data, int link) {
  io_uring_sqe_set_data64(sqe, (uint64_t)user_data);
  if (link) io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
}

/** Queues a write of `length` bytes at `offset`; with `link` the next entry runs only if it completes in full. */
int chronon_ring_prep_write(void *memory, int fd, void *buffer, unsigned length, int64_t offset,
                            unsigned user_data, int link) {
  struct chronon_ring *r = memory;
  struct io_uring_sqe *sqe = next_sqe(r);
  if (sqe == NULL) return -EBUSY;
  io_uring_prep_write(sqe, fd, buffer, length, (uint64_t)offset);
  finish_sqe(sqe, user_data, link);
  return 0;
}

/** Queues a writev of `count` iovecs (struct iovec, 16 bytes each on 64-bit Linux). */
int chronon_ring_prep_writev(void *memory, int fd, void *iovecs, unsigned count, int64_t offset,
                             unsigned user_data, int link) {
  struct chronon_ring *r = memory;
  struct io_uring_sqe *sqe = next_sqe(r);
  if (sqe == NULL) return -EBUSY;
  io_uring_prep_writev(sqe, fd, (const struct iovec *)iovecs, count, (uint64_t)offset);
  finish_sqe(sqe, user_data, link);
  return 0;
}

/** Queues a read of up to `length` bytes at `offset`. */
int chronon_ring_prep_read(void *memory, int fd, void *buffer, unsigned length, int64_t offset,
                           unsigned user_data, int link) {
  struct chronon_ring *r = memory;
  struct io_uring_sqe *sqe = next_sqe(r);
  if (sqe == NULL) return -EBUSY;
  io_uring_prep_read(sqe, fd, buffer, length, (uint64_t)offset);
  finish_sqe(sqe, user_data, link);
  return 0;
}

/** Queues an fdatasync (datasync != 0) or fsync of `fd`. */
int chronon_ring_prep_fsync(void *memory, int fd, int datasync, unsigned user_data, int link) {
  struct chronon_ring *r = memory;
  struct io_uring_sqe *sqe = next_sqe(r);
  if (sqe == NULL) return -EBUSY;
  io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
  finish_sqe(sqe, user_data, link);
  return 0;
}

/** Hands every queued entry to the kernel in one system call; returns how many it took. */
int chronon_ring_submit(void *memory) { return io_uring_submit(&((struct chronon_ring *)memory)->ring); }

/**
 * Copies up to `max` ready completions into `out` as (user_data, res) int32 pairs and marks
 * them seen. Never blocks; returns how many it copied.
 */
int chronon_ring_reap(void *memory, int32_t *out, unsigned max) {
  struct chronon_ring *r = memory;
  struct io_uring_cqe *cqes[64];
  unsigned total = 0;
  while (total < max) {
    unsigned want = max - total;
    if (want > 64) want = 64;
    unsigned got = io_uring_peek_batch_cqe(&r->ring, cqes, want);
    if (got == 0) break;
    for (unsigned i = 0; i < got; i++) {
      out[2 * (total + i)] = (int32_t)(uint32_t)io_uring_cqe_get_data64(cqes[i]);
      out[2 * (total + i) + 1] = cqes[i]->res;
    }
    io_uring_cq_advance(&r->ring, got);
    total += got;
  }
  return (int)total;
}

/**
 * Blocks until at least one completion is ready (for FFIs that can run a call off the
 * event loop thread); returns 0 or -errno.
 */
int chronon_ring_wait(void *memory) {
  struct io_uring_cqe *cqe;
  return io_uring_wait_cqe(&((struct chronon_ring *)memory)->ring, &cqe);
}

/**
 * Blocks the calling thread until a completion is ready or `micros` pass; returns 0 (one
 * is ready), -ETIME (none came in time) or -errno. -EOPNOTSUPP on kernels without
 * IORING_FEAT_EXT_ARG, where liburing would queue a timeout entry of its own into the
 * submission queue (its completion would then reach chronon_ring_reap as a foreign tag).
 */
int chronon_ring_wait_micros(void *memory, unsigned micros) {
  struct chronon_ring *r = memory;
  if (!(r->ring.features & IORING_FEAT_EXT_ARG)) return -EOPNOTSUPP;
  struct io_uring_cqe *cqe;
  struct __kernel_timespec timeout = { .tv_sec = micros / 1000000, .tv_nsec = (long long)(micros % 1000000) * 1000 };
  return io_uring_wait_cqe_timeout(&r->ring, &cqe, &timeout);
}
