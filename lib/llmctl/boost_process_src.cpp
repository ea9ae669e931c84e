// Boost.Process v2 (1.81) ships its non-template parts as source to be compiled once;
// Debian has no prebuilt library for it.
#include <boost/process/v2/src.hpp>
