// Awaiting a condition instead of sleeping for a guessed time: the one polling loop of the tests.
#pragma once

#include <chrono>
#include <functional>

namespace bbtest {

/// Checks `condition` every `poll` until it holds or `timeout` has passed; a condition that
/// became true during the last pause still counts. True when it held. Use it wherever a test
/// would otherwise sleep "long enough" for something to happen.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(15),
                std::chrono::milliseconds poll = std::chrono::milliseconds(50));

}  // namespace bbtest
