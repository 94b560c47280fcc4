#include "cfaiss.h"
#include <faiss/index_factory.h>

const char *cfaiss_version(void) {
    return "1.7.3";
}
