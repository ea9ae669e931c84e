// The physical floor for the benchmarks: the least a program can do to answer `llmctl ps` —
// start, open the same SQLite state file read-only, read every server row, print it, exit.
//   llmctl-bench-floor STATE_DB   print the rows (what ps needs, nothing more)
//   llmctl-bench-floor --version  print a line and exit (the floor for llmctl --version)
// Built with the same compiler, flags and SQLite library as llmctl.

#include <cstdio>
#include <cstring>
#include <sqlite3.h>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: llmctl-bench-floor STATE_DB | --version\n");
        return 2;
    }
    if (std::strcmp(argv[1], "--version") == 0) {
        std::puts("llmctl-bench-floor 0");
        return 0;
    }
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        std::fprintf(stderr, "open %s: %s\n", argv[1], db ? sqlite3_errmsg(db) : "out of memory");
        return 1;
    }
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT name, status, pid, port FROM servers ORDER BY name", -1, &st, nullptr) != SQLITE_OK) {
        std::fprintf(stderr, "prepare: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        std::printf("%s\t%s\t%lld\t%lld\n", reinterpret_cast<const char*>(sqlite3_column_text(st, 0)),
                    reinterpret_cast<const char*>(sqlite3_column_text(st, 1)), sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc == SQLITE_DONE ? 0 : 1;
}
