#include <oneapi/dnnl/dnnl.h>
#include <malloc.h>  // mallopt: keep activation buffers in the heap (Kernels/Threads.swift)
// oneDNN in Debian is built on GNU OpenMP; its thread count is OpenMP's.
void omp_set_num_threads(int num_threads);
int omp_get_max_threads(void);
int omp_get_thread_num(void);
int omp_get_num_threads(void);
// libgomp's entry point for `#pragma omp parallel num_threads(n)`: runs fn(data) on n threads of the
// same OpenMP pool that oneDNN uses, so the Swift kernels and oneDNN never compete for the cores.
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned int flags);
