/*
 * imdsguard's one native addon (Node-API, so one build serves every Node version from 22 on). It is
 * optional: without it the guard still works, more slowly or with fewer sinks.
 *
 *   sockdiag.c   exact TCP socket lookups through netlink sock_diag (process attribution)
 *   unixdgram.c  datagrams to a unix socket such as /dev/log (the syslog sink); Node's dgram only
 *                speaks UDP
 *
 * Built by scripts/build-native.js at `npm install`; loaded by src/native/addon.ts.
 */
#include <node_api.h>

napi_value sockdiag_init(napi_env env, napi_value exports);
napi_value unixdgram_init(napi_env env, napi_value exports);

NAPI_MODULE_INIT() {
  if (sockdiag_init(env, exports) == NULL) return NULL;
  if (unixdgram_init(env, exports) == NULL) return NULL;
  return exports;
}
