/** A worker module that fails while loading, as a broken install would: it never becomes ready. */
throw new Error("this worker cannot load");
