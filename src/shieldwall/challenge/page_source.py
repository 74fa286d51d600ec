"""The challenge page's source: HTML, inline CSS and two inline scripts, no external resource at all.

Markers (@NAME@) are filled per request by page.ChallengePage; @VERIFY@ once, when the template is built.

- The worker script (<script type="text/plain">, so the browser does not run it in the page) is started
  as a Web Worker from a Blob, so the search never freezes the page. `solve(c, d, report)` tries nonces
  0, 1, 2, ... in batches of 256 and returns the first whose SHA-256(c + n) has `d` leading zero bits:
  exactly solver.solve. It hashes with WebCrypto when `crypto.subtle` exists (batched, because each
  digest call is asynchronous) and otherwise with `sha256`, a small pure-JS SHA-256: WebCrypto only exists
  in secure contexts, and a shielded site may be served over plain HTTP.
- The page script reads the token and difficulty from data attributes (HTML-escaped, never inside script
  text), runs the worker (or, if a worker cannot start, the same code in the page), shows progress and
  goes to the verify URL with location.replace, so the challenge is not left in the history.
- Without JavaScript, <noscript> refreshes to the wait-token URL after @WAIT_SECONDS@ seconds and shows a
  GET form with a Continue button.
"""

from __future__ import annotations

from typing import Final

WORKER_SCRIPT: Final = """"use strict";
var K=[0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,
0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,
0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,
0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,
0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,
0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,
0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,
0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2];
var W=new Int32Array(64);
function sha256(m){
  var l=m.length,nb=(l+72)&~63,p=new Uint8Array(nb),o=new Uint8Array(32),i,j,t,u,a,b,c,d,e,f,g,h,
  H=[0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19];
  p.set(m);p[l]=0x80;
  t=Math.floor(l/0x20000000);u=(l<<3)>>>0;
  p[nb-8]=t>>>24;p[nb-7]=t>>>16;p[nb-6]=t>>>8;p[nb-5]=t;
  p[nb-4]=u>>>24;p[nb-3]=u>>>16;p[nb-2]=u>>>8;p[nb-1]=u;
  for(i=0;i<nb;i+=64){
    for(j=0;j<16;j++)W[j]=p[i+4*j]<<24|p[i+4*j+1]<<16|p[i+4*j+2]<<8|p[i+4*j+3];
    for(j=16;j<64;j++){
      t=W[j-15];u=W[j-2];
      W[j]=((t>>>7|t<<25)^(t>>>18|t<<14)^t>>>3)+((u>>>17|u<<15)^(u>>>19|u<<13)^u>>>10)+W[j-7]+W[j-16]|0;
    }
    a=H[0];b=H[1];c=H[2];d=H[3];e=H[4];f=H[5];g=H[6];h=H[7];
    for(j=0;j<64;j++){
      t=h+((e>>>6|e<<26)^(e>>>11|e<<21)^(e>>>25|e<<7))+(e&f^~e&g)+K[j]+W[j]|0;
      u=((a>>>2|a<<30)^(a>>>13|a<<19)^(a>>>22|a<<10))+(a&b^a&c^b&c)|0;
      h=g;g=f;f=e;e=d+t|0;d=c;c=b;b=a;a=t+u|0;
    }
    H[0]=H[0]+a|0;H[1]=H[1]+b|0;H[2]=H[2]+c|0;H[3]=H[3]+d|0;
    H[4]=H[4]+e|0;H[5]=H[5]+f|0;H[6]=H[6]+g|0;H[7]=H[7]+h|0;
  }
  for(j=0;j<8;j++){o[4*j]=H[j]>>>24;o[4*j+1]=H[j]>>>16;o[4*j+2]=H[j]>>>8;o[4*j+3]=H[j];}
  return o;
}
function zeros(h){
  for(var i=0,z=0;i<h.length;i++,z+=8)if(h[i])return z+Math.clz32(h[i])-24;
  return z;
}
async function solve(c,d,report){
  var enc=new TextEncoder(),sub=self.crypto&&self.crypto.subtle,n=0,i,hs;
  for(;;){
    for(hs=[],i=0;i<256;i++){
      var m=enc.encode(c+(n+i));
      hs.push(sub?sub.digest("SHA-256",m):sha256(m));
    }
    if(sub)hs=await Promise.all(hs);
    for(i=0;i<256;i++)if(zeros(new Uint8Array(hs[i]))>=d)return n+i;
    n+=256;
    if(report)report(n);
  }
}
"""

PAGE_SCRIPT: Final = """(function(){
  var m=document.getElementById("sw"),s=document.getElementById("sw-status"),
  c=m.getAttribute("data-c"),d=+m.getAttribute("data-d"),
  src=document.getElementById("sw-worker").textContent,started=false,t0=Date.now();
  function progress(n){s.textContent="Working\\u2026 "+n+" tries in "+((Date.now()-t0)/1000).toFixed(1)+" s";}
  function done(n){
    s.textContent="Done, taking you to the site\\u2026";
    location.replace("@VERIFY@?c="+encodeURIComponent(c)+"&n="+n);
  }
  function inPage(){
    if(started)return;started=true;
    new Function(src+"\\nreturn solve;")()(c,d,progress).then(done);
  }
  s.textContent="Working\\u2026";
  try{
    var w=new Worker(URL.createObjectURL(new Blob([src,
      "\\nself.onmessage=function(e){solve(e.data.c,e.data.d,function(n){postMessage({p:n});})"+
      ".then(function(n){postMessage({n:n});});};"],{type:"text/javascript"})));
    w.onmessage=function(e){started=true;if(e.data.n!==undefined)done(e.data.n);else progress(e.data.p);};
    w.onerror=function(e){if(e&&e.preventDefault)e.preventDefault();inPage();};
    w.postMessage({c:c,d:d});
  }catch(e){inPage();}
})();
"""

PAGE_TEMPLATE: Final = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex,nofollow">
<title>Checking your browser</title>
<noscript><meta http-equiv="refresh" content="@WAIT_SECONDS@;url=@VERIFY@?w=@WAIT_TOKEN@"></noscript>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:12vh auto;padding:0 1em;color:#222}
h1{font-size:1.4em}code{background:#eee;padding:.1em .3em;border-radius:3px}
button{font:inherit;padding:.4em 1.2em}small{color:#666}#sw-status{min-height:1.5em}</style></head>
<body><main id="sw" data-c="@CHALLENGE@" data-d="@DIFFICULTY@">
<h1>One moment, please</h1>
<p>This site is under heavy load, so it is checking that your browser is a real one.
This takes a second or two; there is nothing you need to do.</p>
<p id="sw-status" role="status"></p>
<noscript><p>JavaScript is turned off, so this takes a little longer:
please wait @WAIT_SECONDS@ seconds, then press Continue. The page also continues by itself.</p>
<form method="get" action="@VERIFY@"><input type="hidden" name="w" value="@WAIT_TOKEN@">
<button type="submit">Continue</button></form></noscript>
<p><small>Reference: <code>@REFID@</code> &middot; Protected by shieldwall</small></p>
</main>
<script id="sw-worker" type="text/plain">"""
    + WORKER_SCRIPT
    + """</script>
<script>"""
    + PAGE_SCRIPT
    + """</script>
</body></html>
"""
)
