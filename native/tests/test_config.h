// native/tests/test_config.h — what the shard tests share: the backend under test.
#pragma once
#include <cstdlib>
#include <cstring>

#include "shard/shard.h"

namespace zio::testing {

// The shard suites run once per backend: ctest registers them a second time with
// ZERO_IO_BACKEND=epoll (CMakeLists.txt), like the TypeScript suite.
inline ShardConfig base_cfg() {
  ShardConfig c;
  const char* b = getenv("ZERO_IO_BACKEND");
  if (b && strcmp(b, "epoll") == 0) c.backend = Backend::Epoll;
  if (b && strcmp(b, "io_uring") == 0) c.backend = Backend::IoUring;
  return c;
}

}  // namespace zio::testing
