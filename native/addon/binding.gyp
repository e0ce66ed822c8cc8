{
  "targets": [
    {
      "target_name": "imdsguard",
      "sources": ["addon.c", "sockdiag.c", "unixdgram.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
