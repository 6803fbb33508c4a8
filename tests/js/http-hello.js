// A wasi:http/proxy handler in JavaScript, as componentize-js builds one by
// default: the `fetch` event. What `weft serve`'s tests serve.
//   /         a hello
//   /echo     the request's body back
//   /bytes?n=N  N bytes
//   /throw    an exception
//   /fetch?url=U  an outgoing GET of U (502 and the error when it fails)

addEventListener('fetch', (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  switch (url.pathname) {
    case '/':
      return new Response('Hello from a JavaScript handler\n');
    case '/echo':
      return new Response(await request.arrayBuffer());
    case '/bytes': {
      const n = Number(url.searchParams.get('n') ?? '0');
      return new Response(new Uint8Array(n).fill(119));
    }
    case '/throw':
      throw new Error('the handler threw on purpose');
    case '/fetch': {
      try {
        const upstream = await fetch(url.searchParams.get('url'));
        return new Response(`${upstream.status}: ${await upstream.text()}`);
      } catch (e) {
        return new Response(`the outgoing request failed: ${e}\n`, { status: 502 });
      }
    }
    default:
      return new Response('', { status: 404 });
  }
}
