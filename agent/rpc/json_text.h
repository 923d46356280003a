// JSON text of the node, checked and sliced without building it: the agent-side wrapper of the
// SDK's JSON (blockbuster/json.h) for replies that may be large or hostile.
//
// A reply of max_response_bytes (8 MiB) parsed into Json values would take some 40 times that in
// memory ("[0,0,0,...]" is one value per two bytes); these functions check the text and find its
// members in place, allocating nothing but the names of members. The RPC client then parses only
// the small members it must read (the reply's id, the error's code and message) with
// blockbuster::Json, and hands plugins the `result` text exactly as the node wrote it (64-bit
// integers and decimals intact).
//
// Grammar and limits are the SDK parser's: what valid() accepts, blockbuster::Json::parse accepts
// too (nesting up to Json::kMaxDepth; strings without raw control characters; \u escapes with
// paired high surrogates). The checker recurses once per nesting level, so at most kMaxDepth + 1
// frames deep, whatever the input.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace bb::jsontext {

constexpr std::size_t npos = std::string_view::npos;

/// The index just past the one JSON value that starts at `at` (no leading whitespace), or npos
/// when it is malformed or nested deeper than the SDK allows. `depth` is the nesting level of
/// the value (0 for a whole text).
std::size_t skipValue(std::string_view text, std::size_t at, int depth = 0);

/// True when `text` is exactly one JSON value, whitespace around it allowed.
bool valid(std::string_view text);

/// Strips JSON whitespace (space, tab, CR, LF) from both ends.
std::string_view trim(std::string_view text);

/// Calls `member(name, value_text)` for each member of the object `text` in order (a repeated
/// name is seen each time; names are unescaped). False, having called `member` for none, when
/// `text` is not a valid JSON object.
bool forEachMember(
    std::string_view text,
    const std::function<void(const std::string& name, std::string_view value)>& member);

}  // namespace bb::jsontext
