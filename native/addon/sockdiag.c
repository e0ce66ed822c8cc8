/*
 * sockdiag: one exact TCP socket lookup through netlink sock_diag (NETLINK_SOCK_DIAG).
 *
 * The guard knows both ends of a client's connection; the kernel can find that socket by its
 * 4-tuple in its connection hash in microseconds, and returns the socket's owner uid and inode.
 * Reading /proc/net/tcp instead walks every bucket of the hash on each read (about a millisecond on
 * a large host, plus microseconds per TIME_WAIT row). See docs/attribution.md.
 *
 * JavaScript interface (exported by the addon, see addon.c; used by src/guard/attribution/sock-diag.ts):
 *   sockDiagLookup(family: 4 | 6, src: Buffer, sport: number, dst: Buffer, dport: number)
 *     -> [state, uid, inode] | null
 *   src/sport is the socket's own (local) end, dst/dport its peer. Addresses are 4 (family 4) or
 *   16 (family 6) bytes in network order. null: no such socket in this network namespace.
 *   Throws an Error with .code = "E..." (errno name) when the kernel refuses or does not answer.
 *
 * The netlink socket is opened on first use, once per JavaScript environment (the main thread and
 * each worker thread have their own), in the network namespace of the process at that time, and
 * closed when the environment exits. Every call is synchronous and bounded by a 200 ms receive
 * timeout; the kernel answers an exact lookup at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct {
  int fd;
  uint32_t seq;
} diag_state;

static void finalize_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  diag_state *st = data;
  if (st->fd >= 0) close(st->fd);
  free(st);
}

static const char *errno_code(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EAGAIN: return "EAGAIN";
    case EINTR: return "EINTR";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "EIO";
  }
}

static napi_value throw_errno(napi_env env, int e, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "sock_diag %s: %s", what, strerror(e));
  napi_throw_error(env, errno_code(e), msg);
  return NULL;
}

static int open_diag(diag_state *st) {
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return -errno;
  struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  st->fd = fd;
  return 0;
}

static int get_u32(napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok ? 0 : -1;
}

static napi_value lookup(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != 5) {
    napi_throw_type_error(env, "EINVAL", "lookup(family, src, sport, dst, dport) takes 5 arguments");
    return NULL;
  }
  uint32_t family, sport, dport;
  if (get_u32(env, argv[0], &family) || (family != 4 && family != 6)) {
    napi_throw_type_error(env, "EINVAL", "family must be 4 or 6");
    return NULL;
  }
  if (get_u32(env, argv[2], &sport) || get_u32(env, argv[4], &dport) || sport > 65535 || dport > 65535) {
    napi_throw_type_error(env, "EINVAL", "ports must be integers from 0 to 65535");
    return NULL;
  }
  size_t alen = family == 4 ? 4 : 16;
  void *src = NULL, *dst = NULL;
  size_t slen = 0, dlen = 0;
  bool is_buf = false;
  if (napi_is_buffer(env, argv[1], &is_buf) != napi_ok || !is_buf ||
      napi_get_buffer_info(env, argv[1], &src, &slen) != napi_ok || slen != alen ||
      napi_is_buffer(env, argv[3], &is_buf) != napi_ok || !is_buf ||
      napi_get_buffer_info(env, argv[3], &dst, &dlen) != napi_ok || dlen != alen) {
    napi_throw_type_error(env, "EINVAL", "addresses must be Buffers of 4 (family 4) or 16 (family 6) bytes");
    return NULL;
  }

  diag_state *st = NULL;
  if (napi_get_instance_data(env, (void **)&st) != napi_ok || st == NULL) {
    napi_throw_error(env, "EINVAL", "sock_diag: module state missing");
    return NULL;
  }
  if (st->fd < 0) {
    int r = open_diag(st);
    if (r < 0) return throw_errno(env, -r, "socket");
  }

  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 r;
  } req;
  memset(&req, 0, sizeof req);
  uint32_t seq = ++st->seq;
  req.nlh.nlmsg_len = sizeof req;
  req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.nlh.nlmsg_flags = NLM_F_REQUEST;
  req.nlh.nlmsg_seq = seq;
  req.r.sdiag_family = family == 4 ? AF_INET : AF_INET6;
  req.r.sdiag_protocol = IPPROTO_TCP;
  req.r.idiag_states = ~0U;
  req.r.id.idiag_sport = htons((uint16_t)sport);
  req.r.id.idiag_dport = htons((uint16_t)dport);
  memcpy(req.r.id.idiag_src, src, alen);
  memcpy(req.r.id.idiag_dst, dst, alen);
  req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t n;
  do {
    n = sendto(st->fd, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, errno, "send");

  /* An answer is one inet_diag_msg (plus attributes we did not ask for) or an error message. */
  long buf[2048 / sizeof(long)];
  for (int attempts = 0; attempts < 8; attempts++) {
    do {
      n = recv(st->fd, buf, sizeof buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      int e = errno;
      /* A lost answer would desynchronise the socket: start afresh next time. */
      close(st->fd);
      st->fd = -1;
      return throw_errno(env, e == EWOULDBLOCK ? EAGAIN : e, "receive");
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_seq != seq) continue; /* a late answer to an earlier, timed-out request */
      if (h->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *err = NLMSG_DATA(h);
        if (err->error == 0) continue;
        int e = -err->error;
        napi_value result;
        if (e == ENOENT) {
          napi_get_null(env, &result);
          return result;
        }
        return throw_errno(env, e, "lookup");
      }
      if (h->nlmsg_type == NLMSG_DONE) {
        napi_value result;
        napi_get_null(env, &result);
        return result;
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
        continue;
      struct inet_diag_msg *m = NLMSG_DATA(h);
      napi_value result, v;
      napi_create_array_with_length(env, 3, &result);
      napi_create_uint32(env, m->idiag_state, &v);
      napi_set_element(env, result, 0, v);
      napi_create_uint32(env, m->idiag_uid, &v);
      napi_set_element(env, result, 1, v);
      napi_create_uint32(env, m->idiag_inode, &v);
      napi_set_element(env, result, 2, v);
      return result;
    }
  }
  return throw_errno(env, EIO, "receive (no answer to the request)");
}

/* Called by the addon's init (addon.c). */
napi_value sockdiag_init(napi_env env, napi_value exports) {
  diag_state *st = calloc(1, sizeof *st);
  if (st == NULL) {
    napi_throw_error(env, "ENOMEM", "sock_diag: out of memory");
    return NULL;
  }
  st->fd = -1;
  if (napi_set_instance_data(env, st, finalize_state, NULL) != napi_ok) {
    free(st);
    return NULL;
  }
  napi_value fn;
  if (napi_create_function(env, "sockDiagLookup", NAPI_AUTO_LENGTH, lookup, NULL, &fn) != napi_ok)
    return NULL;
  if (napi_set_named_property(env, exports, "sockDiagLookup", fn) != napi_ok) return NULL;
  return exports;
}
