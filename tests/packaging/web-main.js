// A scratch web app bundled by vite from the packed npm tarball.
import { cid } from "medshare-wasm";
document.body.dataset.cid = cid(new TextEncoder().encode("hello IPFS\n"));
