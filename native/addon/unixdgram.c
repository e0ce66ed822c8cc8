/*
 * unixdgram: send datagrams to a unix datagram socket (syslog's /dev/log), and, for tests and the
 * emulation of a syslog daemon, receive them.
 *
 * JavaScript interface (used by src/guard/alerts and the tests through src/native/addon.ts):
 *   unixDgramOpen() -> fd               a non-blocking, close-on-exec AF_UNIX SOCK_DGRAM socket
 *   unixDgramSend(fd, path, buf)        one datagram to path; returns nothing
 *   unixDgramBind(fd, path)             binds fd to path (a receiver)
 *   unixDgramRecv(fd) -> Buffer | null  one queued datagram, or null when none is queued
 *   unixDgramClose(fd)
 * Every call is synchronous and never blocks: a full receiver queue is EAGAIN, a missing socket
 * ENOENT, no reader ECONNREFUSED. Errors are thrown as an Error with .code = "E..." (errno name).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_DATAGRAM 65536

static const char *code_of(int e) {
  switch (e) {
    case EAGAIN: return "EAGAIN";
    case ENOENT: return "ENOENT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOTDIR: return "ENOTDIR";
    case EMSGSIZE: return "EMSGSIZE";
    case ENOBUFS: return "ENOBUFS";
    case EADDRINUSE: return "EADDRINUSE";
    case EBADF: return "EBADF";
    case EMFILE: return "EMFILE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EPROTOTYPE: return "EPROTOTYPE";
    default: return "EIO";
  }
}

static napi_value fail(napi_env env, int e, const char *what) {
  char msg[200];
  snprintf(msg, sizeof msg, "unix datagram %s: %s", what, strerror(e));
  napi_throw_error(env, code_of(e), msg);
  return NULL;
}

static int args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, "EINVAL", "unix datagram: missing arguments");
    return -1;
  }
  return 0;
}

static int get_fd(napi_env env, napi_value v, int *fd) {
  int32_t n;
  if (napi_get_value_int32(env, v, &n) != napi_ok || n < 0) {
    napi_throw_type_error(env, "EINVAL", "unix datagram: fd must be a non-negative integer");
    return -1;
  }
  *fd = n;
  return 0;
}

static int get_addr(napi_env env, napi_value v, struct sockaddr_un *sa, socklen_t *len) {
  size_t n = 0;
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "unix datagram: path must be a string");
    return -1;
  }
  if (n == 0 || n >= sizeof sa->sun_path) {
    napi_throw_error(env, "ENAMETOOLONG", "unix datagram: path is empty or longer than 107 bytes");
    return -1;
  }
  napi_get_value_string_utf8(env, v, sa->sun_path, sizeof sa->sun_path, &n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return 0;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(env, errno, "socket");
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int fd;
  struct sockaddr_un sa;
  socklen_t len;
  void *data = NULL;
  size_t size = 0;
  if (args(env, info, 3, argv) < 0 || get_fd(env, argv[0], &fd) < 0 || get_addr(env, argv[1], &sa, &len) < 0)
    return NULL;
  if (napi_get_buffer_info(env, argv[2], &data, &size) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "unix datagram: data must be a Buffer");
    return NULL;
  }
  ssize_t r;
  do r = sendto(fd, data, size, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
  while (r < 0 && errno == EINTR);
  if (r < 0) return fail(env, errno, "send");
  return NULL;
}

static napi_value js_bind(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  struct sockaddr_un sa;
  socklen_t len;
  if (args(env, info, 2, argv) < 0 || get_fd(env, argv[0], &fd) < 0 || get_addr(env, argv[1], &sa, &len) < 0)
    return NULL;
  if (bind(fd, (struct sockaddr *)&sa, len) < 0) return fail(env, errno, "bind");
  return NULL;
}

static napi_value js_recv(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (args(env, info, 1, argv) < 0 || get_fd(env, argv[0], &fd) < 0) return NULL;
  static char buf[MAX_DATAGRAM];
  ssize_t r;
  do r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  napi_value out;
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      napi_get_null(env, &out);
      return out;
    }
    return fail(env, errno, "recv");
  }
  napi_create_buffer_copy(env, (size_t)r, buf, NULL, &out);
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (args(env, info, 1, argv) < 0 || get_fd(env, argv[0], &fd) < 0) return NULL;
  if (close(fd) < 0 && errno != EINTR) return fail(env, errno, "close");
  return NULL;
}

/* Called by the addon's init (addon.c). */
napi_value unixdgram_init(napi_env env, napi_value exports) {
  const struct {
    const char *name;
    napi_callback cb;
  } fns[] = {
      {"unixDgramOpen", js_open}, {"unixDgramSend", js_send}, {"unixDgramBind", js_bind},
      {"unixDgramRecv", js_recv}, {"unixDgramClose", js_close},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, fns[i].name, fn) != napi_ok) return NULL;
  }
  return exports;
}
