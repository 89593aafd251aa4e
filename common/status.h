// Small Status helpers that Abseil 20220623 does not ship.
#ifndef ECOMSTREAM_COMMON_STATUS_H_
#define ECOMSTREAM_COMMON_STATUS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ECOMSTREAM_STATUS_CONCAT_INNER_(a, b) a##b
#define ECOMSTREAM_STATUS_CONCAT_(a, b) ECOMSTREAM_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status ecomstream_status_ = (expr);      \
    if (!ecomstream_status_.ok()) return ecomstream_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, StatusOrExpr());` binds the value or returns the error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ECOMSTREAM_ASSIGN_OR_RETURN_IMPL_(ECOMSTREAM_STATUS_CONCAT_(statusor_, __LINE__), lhs, expr)
#define ECOMSTREAM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                     \
  if (!tmp.ok()) return tmp.status();                    \
  lhs = std::move(tmp).value()

#endif  // ECOMSTREAM_COMMON_STATUS_H_
